import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDemoLibrary, type DemoLibrary } from "../demo/build-demo-library.js";
import { hashFile } from "../hash/hash-file.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { createServer, type GyozaServer } from "./create-server.js";

/**
 * The gyoza serve web app end to end: the client is built with vite into the temp dir, served by
 * createServer on the micro demo library, and driven in Debian's chromium through playwright-core
 * (which never downloads a browser). Without chromium the suite is skipped, unless
 * GYOZA_REQUIRE_CHROMIUM=1 (CI) makes that a failure. Screenshots go to $GYOZA_SCREENSHOT_DIR
 * (default: a gyoza-serve-screens folder in the OS temp dir).
 */
const CHROMIUM =
  process.env.GYOZA_CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
const REQUIRED = process.env.GYOZA_REQUIRE_CHROMIUM === "1";
const MISSING = CHROMIUM === undefined || !existsSync(CHROMIUM);
const SKIP_REASON = "no chromium at /usr/bin/chromium (apt-get install chromium, or set GYOZA_CHROMIUM)";
const SCREENS = process.env.GYOZA_SCREENSHOT_DIR ?? join(tmpdir(), "gyoza-serve-screens");
const OUTPUT = "out/e2e-gyozamix-fp16.safetensors";

if (MISSING && REQUIRED) {
  it("finds chromium (GYOZA_REQUIRE_CHROMIUM=1)", () => {
    throw new Error(`GYOZA_REQUIRE_CHROMIUM=1 but ${SKIP_REASON}`);
  });
}

describe.skipIf(MISSING)(
  `the gyoza serve app in headless Chromium${MISSING ? ` (skipped: ${SKIP_REASON})` : ""}`,
  () => {
    let dir = "";
    useTempDirWithHashCache("gyoza-app-browser-", (path) => (dir = path));
    let demo: DemoLibrary;
    let server: GyozaServer;
    let browser: Browser;
    let page: Page;
    const problems: string[] = [];

    const shot = async (name: string) => {
      await page.evaluate("window.scrollTo(0, 0)");
      await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
    };
    const step = (name: string) => page.locator(`section.step[data-step="${name}"]`);

    beforeAll(async () => {
      await mkdir(SCREENS, { recursive: true });
      const webDir = join(dir, "web");
      const { build } = await import("vite");
      await build({
        configFile: resolve("web/vite.config.ts"),
        logLevel: "error",
        build: { outDir: webDir, emptyOutDir: true },
      });
      demo = await buildDemoLibrary(join(dir, "demo"), {
        size: "micro",
        imagesPerVersion: 1,
        imageSize: [192, 256],
      });
      server = await createServer({ library: demo.libraryPath, roots: [demo.dir], webDir });
      const url = await server.listen();
      browser = await chromium.launch({ executablePath: CHROMIUM! });
      const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
      await context.grantPermissions(["clipboard-read", "clipboard-write"]);
      page = await context.newPage();
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        // a refused request is logged as "Failed to load resource"; those are checked by URL below
        if (message.type() === "error" && !message.text().startsWith("Failed to load resource"))
          problems.push(`console: ${message.text()}`);
      });
      page.on("response", (response) => {
        const path = new URL(response.url()).pathname;
        // the only refusal expected: the pasted weight string with a trailing comma
        if (response.status() >= 400 && path !== "/api/weights/parse")
          problems.push(`HTTP ${response.status()} for ${path}`);
      });
      page.on("request", (request) => {
        if (new URL(request.url()).origin !== new URL(url).origin && !request.url().startsWith("blob:"))
          problems.push(`request to another origin: ${request.url()}`);
      });
      await page.goto(url);
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    it("draws 26 curve handles per step over the U, named by the sd1 layout", async () => {
      const handles = step("composition").locator("[role=slider]");
      await expect.poll(() => handles.count()).toBe(26);
      expect(await handles.first().getAttribute("data-slot")).toBe("BASE");
      expect(await handles.nth(13).getAttribute("data-slot")).toBe("M00");
      expect(await handles.last().getAttribute("data-slot")).toBe("OUT11");
    });

    it("builds the GyozaMix recipe by dragging handles and choosing presets, with the plan shown", async () => {
      const composition = step("composition");
      // drag IN05 to the top: the weight string shows 1 in its place
      const in05 = composition.locator('[data-slot="IN05"]');
      await composition.locator("svg.curve").scrollIntoViewIfNeeded();
      const box = (await in05.boundingBox())!;
      const curve = (await composition.locator("svg.curve").boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width / 2, curve.y + 2, { steps: 5 });
      await page.mouse.up();
      await expect
        .poll(async () => (await composition.locator("[data-weights]").innerText()).split(",")[6])
        .toBe("1");
      // keyboard: one arrow down on IN05 is 0.99
      await in05.focus();
      await page.keyboard.press("ArrowDown");
      await expect
        .poll(async () => (await composition.locator("[data-weights]").innerText()).split(",")[6])
        .toBe("0.99");
      // snap to REVERSE_COSINE: the recipe names the preset, and it is the nearest
      await composition.locator('[data-preset="REVERSE_COSINE"]').click();
      await expect
        .poll(() => composition.locator("[data-nearest]").getAttribute("data-nearest"))
        .toBe("REVERSE_COSINE");
      const final = step("final");
      await final.locator('[data-preset="COSINE"]').click();
      // a small drag up off COSINE on OUT11 (at 0): the nearest preset stays COSINE, the recipe gets 26 numbers
      await final.locator("svg.curve").scrollIntoViewIfNeeded();
      const out11 = (await final.locator('[data-slot="OUT11"]').boundingBox())!;
      await page.mouse.move(out11.x + out11.width / 2, out11.y + out11.height / 2);
      await page.mouse.down();
      await page.mouse.move(out11.x + out11.width / 2, out11.y + out11.height / 2 - 25, { steps: 4 });
      await page.mouse.up();
      await expect.poll(() => final.locator("[data-nearest]").getAttribute("data-nearest")).toBe("COSINE");
      const output = page.locator("input[data-output]");
      await output.fill(OUTPUT);
      await output.press("Enter");
      await output.blur();
      const yaml = page.locator("textarea[data-yaml]");
      await expect.poll(() => yaml.inputValue()).toContain(`path: ${OUTPUT}`);
      const text = await yaml.inputValue();
      expect(text).toContain("alpha: REVERSE_COSINE");
      expect(text).toMatch(/final:[\s\S]*alpha: \[ [\d., ]+ \]/);
      await expect
        .poll(() => page.locator("[data-plan]").innerText(), { timeout: 15_000 })
        .toContain("composition");
      await shot("builder");
    });

    it("runs the merge, follows its progress to 100 %, and shows the result in the library with its AutoV3", async () => {
      await page.locator("button[data-run]").click();
      const job = page.locator("section.job");
      await expect.poll(() => job.getAttribute("data-job"), { timeout: 60_000 }).toBe("done");
      expect(await job.locator("[data-percent]").innerText()).toBe("100 %");
      await shot("job-done");
      const shown = await job.locator("[data-result-autov3]").innerText();
      const hashes = await hashFile(join(demo.dir, OUTPUT));
      expect(shown.toLowerCase()).toBe(hashes.autoV3!.slice(0, shown.length).toLowerCase());
      expect(shown.length).toBeGreaterThanOrEqual(10);
      await job.locator("[data-open-result]").click();
      const view = page.locator("[data-file-view]");
      await expect.poll(() => view.getAttribute("data-file-view")).toBe("e2e-gyozamix-fp16.safetensors");
      expect((await view.locator('[data-hash="AutoV3"]').innerText()).toLowerCase()).toBe(
        shown.toLowerCase(),
      );
      await shot("library-result");
    });

    it("shows the demo model with its versions, hashes and sample images", async () => {
      await page.locator('[data-tab="library"]').click();
      await expect.poll(() => page.locator("section.version h2").allInnerTexts()).toEqual(["v2", "v1"]);
      await expect.poll(() => page.locator(".images img").count()).toBeGreaterThan(0);
      await expect
        .poll(() =>
          page
            .locator(".images img")
            .first()
            .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
        )
        .toBeGreaterThan(0);
      await shot("library");
    });

    it("diffs the new merge against the demo's v1 per block", async () => {
      await page.locator('[data-tab="analyse"]').click();
      await page.locator("input[data-diff-a]").fill(join(demo.dir, OUTPUT));
      await page.locator("input[data-diff-b]").fill(demo.versions[1]!.files[0]!);
      await page.locator("button[data-run-diff]").click();
      const chart = page.locator('svg[data-chart="diff"]');
      await expect.poll(() => chart.locator("rect").count(), { timeout: 30_000 }).toBe(26);
      const cosine = Number(await page.locator("[data-total-cosine]").innerText());
      expect(cosine).toBeGreaterThan(0.5);
      expect(cosine).toBeLessThanOrEqual(1);
      await shot("diff");
    });

    it("a pasted 26-value string with a trailing comma shows the parser's error inline", async () => {
      await page.locator('[data-tab="builder"]').click();
      const composition = step("composition");
      const before = await composition.locator("[data-weights]").innerText();
      await composition.locator("input[data-paste]").fill(`${Array(26).fill("0.5").join(",")},`);
      await composition.locator("input[data-paste]").press("Enter");
      const error = composition.locator("[data-paste-error]");
      await expect.poll(() => error.count()).toBe(1);
      expect(await error.innerText()).toMatch(/field 27 is empty.*remove the trailing comma/);
      expect(await composition.locator("[data-weights]").innerText()).toBe(before);
      await shot("paste-error");
      // the same string without the comma applies
      await composition.locator("input[data-paste]").fill(Array(26).fill("0.25").join(","));
      await composition.locator("input[data-paste]").press("Enter");
      await expect
        .poll(() => composition.locator("[data-weights]").innerText())
        .toBe(Array(26).fill("0.25").join(","));
      expect(await error.count()).toBe(0);
    });

    it("loads nothing from other origins and logs no errors", () => {
      expect(problems).toEqual([]);
    });
  },
);
