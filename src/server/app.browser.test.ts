import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDemoLibrary, type DemoLibrary } from "../demo/build-demo-library.js";
import { hashFile } from "../hash/hash-file.js";
import { readMetadataOf, stripMetadata } from "../image/carry-metadata.js";
import { textsByKey } from "../image/metadata-types.js";
import {
  buildWebClient,
  CHROMIUM_MISSING,
  CHROMIUM_SKIP_REASON,
  openAppPage,
  requireChromiumWhenAsked,
  SCREENSHOT_DIR,
} from "../test-support/browser-app.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import type { JobView } from "./api-schemas.js";
import { createServer, type GyozaServer } from "./create-server.js";

/**
 * The gyoza serve web app end to end: the client is built with vite into the temp dir, served by
 * createServer on the micro demo library, and driven in Debian's chromium (see
 * test-support/browser-app.ts: skipped without chromium unless GYOZA_REQUIRE_CHROMIUM=1).
 * Screenshots go to $GYOZA_SCREENSHOT_DIR (default: a gyoza-serve-screens folder in the OS temp dir).
 */
const MISSING = CHROMIUM_MISSING;
const SKIP_REASON = CHROMIUM_SKIP_REASON;
const SCREENS = SCREENSHOT_DIR;
const OUTPUT = "out/e2e-gyozamix-fp16.safetensors";
const CANCELLED = "out/e2e-cancelled.safetensors";

requireChromiumWhenAsked();

describe.skipIf(MISSING)(
  `the gyoza serve app in headless Chromium${MISSING ? ` (skipped: ${SKIP_REASON})` : ""}`,
  () => {
    let dir = "";
    useTempDirWithHashCache("gyoza-app-browser-", (path) => (dir = path));
    let demo: DemoLibrary;
    let server: GyozaServer;
    let browser: Browser;
    let page: Page;
    let problems: string[] = [];

    const shot = async (name: string) => {
      await page.evaluate("window.scrollTo(0, 0)");
      await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
    };
    const step = (name: string) => page.locator(`section.step[data-step="${name}"]`);
    /** What an element shows (textContent, trimmed). */
    const textOf = async (locator: Locator) => ((await locator.textContent()) ?? "").trim();
    let url = "";
    /** A call to the API from the test itself (not the page), with the token. */
    const apiCall = async <T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> => {
      const response = await fetch(new URL(path, url), {
        method: init.method ?? (init.body ? "POST" : "GET"),
        headers: {
          Authorization: `Bearer ${server.token}`,
          ...(init.body ? { "Content-Type": "application/json" } : {}),
        },
        ...(init.body ? { body: JSON.stringify(init.body) } : {}),
      });
      expect(response.status, await response.clone().text()).toBeLessThan(300);
      return (await response.json()) as T;
    };
    /** Drops a file on an element as a browser drag and drop does (a DataTransfer holding a File). */
    const dropFile = async (target: Locator, path: string) => {
      const args = JSON.stringify([readFileSync(path).toString("base64"), basename(path)]);
      const transfer = await page.evaluateHandle(
        `(([data, name]) => { const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0)); const dt = new DataTransfer(); dt.items.add(new File([bytes], name, { type: "image/png" })); return dt; })(${args})`,
      );
      await target.dispatchEvent("drop", { dataTransfer: transfer });
    };

    beforeAll(async () => {
      await mkdir(SCREENS, { recursive: true });
      const webDir = join(dir, "web");
      await buildWebClient(webDir);
      demo = await buildDemoLibrary(join(dir, "demo"), {
        size: "micro",
        imagesPerVersion: 1,
        imageSize: [192, 256],
      });
      server = await createServer({ library: demo.libraryPath, roots: [demo.dir], webDir });
      url = await server.listen();
      // the only refusal expected: the pasted weight string with a trailing comma
      ({ browser, page, problems } = await openAppPage(url, {
        permissions: ["clipboard-read", "clipboard-write"],
        expectedRefusal: (path) => path === "/api/weights/parse",
      }));
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
        .poll(async () => (await textOf(composition.locator("[data-weights]"))).split(",")[6])
        .toBe("1");
      // keyboard: one arrow down on IN05 is 0.99
      await in05.focus();
      await page.keyboard.press("ArrowDown");
      await expect
        .poll(async () => (await textOf(composition.locator("[data-weights]"))).split(",")[6])
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
        .poll(() => textOf(page.locator("[data-plan]")), { timeout: 15_000 })
        .toContain("composition");
      await shot("builder");
    });

    it("runs the merge, follows its progress to 100 %, and shows the result in the library with its AutoV3", async () => {
      await page.locator("button[data-run]").click();
      const job = page.locator("section.job");
      await expect.poll(() => job.getAttribute("data-job"), { timeout: 60_000 }).toBe("done");
      expect(await textOf(job.locator("[data-percent]"))).toBe("100 %");
      await shot("job-done");
      const shown = await textOf(job.locator("[data-result-autov3]"));
      const hashes = await hashFile(join(demo.dir, OUTPUT));
      expect(shown.toLowerCase()).toBe(hashes.autoV3!.slice(0, shown.length).toLowerCase());
      expect(shown.length).toBeGreaterThanOrEqual(10);
      await job.locator("[data-open-result]").click();
      const view = page.locator("[data-file-view]");
      await expect.poll(() => view.getAttribute("data-file-view")).toBe("e2e-gyozamix-fp16.safetensors");
      expect((await textOf(view.locator('[data-hash="AutoV3"]'))).toLowerCase()).toBe(shown.toLowerCase());
      await shot("library-result");
    });

    it("shows the demo model with its versions, hashes and sample images", async () => {
      await page.locator('[data-tab="library"]').click();
      await expect.poll(() => page.locator("section.version h2").allTextContents()).toEqual(["v2", "v1"]);
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
      const cosine = Number(await textOf(page.locator("[data-total-cosine]")));
      expect(cosine).toBeGreaterThan(0.5);
      expect(cosine).toBeLessThanOrEqual(1);
      await shot("diff");
    });

    it("cancels a queued merge: the job shows cancelled and leaves no output and no partial file", async () => {
      // another job holds the queue (one job runs at a time), so the merge is still queued when cancelled
      const hold = await apiCall<{ id: string }>("/api/jobs", {
        body: { kind: "parents", merged: join(demo.dir, OUTPUT) },
      });
      await page.locator('[data-tab="builder"]').click();
      const output = page.locator("input[data-output]");
      await output.fill(CANCELLED);
      await output.press("Enter");
      await output.blur();
      await expect
        .poll(() => page.locator("textarea[data-yaml]").inputValue())
        .toContain(`path: ${CANCELLED}`);
      await page.locator("button[data-run]").click();
      const job = page.locator("section.job");
      await expect.poll(() => job.getAttribute("data-job")).toBe("queued");
      await job.locator("button", { hasText: "cancel" }).click();
      await expect.poll(() => job.getAttribute("data-job")).toBe("cancelled");
      await shot("job-cancelled");
      await apiCall<JobView>(`/api/jobs/${hold.id}`, { method: "DELETE" });
      await expect
        .poll(async () => (await apiCall<JobView>(`/api/jobs/${hold.id}`)).state)
        .toMatch(/cancelled|done/);
      expect(existsSync(join(demo.dir, CANCELLED))).toBe(false);
      expect(readdirSync(join(demo.dir, "out")).filter((name) => name.includes("partial"))).toEqual([]);
      // back to the merge's own output for the steps that follow
      await output.fill(OUTPUT);
      await output.press("Enter");
      await output.blur();
    });

    it("a pasted 26-value string with a trailing comma shows the parser's error inline", async () => {
      await page.locator('[data-tab="builder"]').click();
      const composition = step("composition");
      const before = await textOf(composition.locator("[data-weights]"));
      await composition.locator("input[data-paste]").fill(`${Array(26).fill("0.5").join(",")},`);
      await composition.locator("input[data-paste]").press("Enter");
      const error = composition.locator("[data-paste-error]");
      await expect.poll(() => error.count()).toBe(1);
      expect(await textOf(error)).toMatch(/field 27 is empty.*remove the trailing comma/);
      expect(await textOf(composition.locator("[data-weights]"))).toBe(before);
      await shot("paste-error");
      // the same string without the comma applies
      await composition.locator("input[data-paste]").fill(Array(26).fill("0.25").join(","));
      await composition.locator("input[data-paste]").press("Enter");
      await expect
        .poll(() => textOf(composition.locator("[data-weights]")))
        .toBe(Array(26).fill("0.25").join(","));
      expect(await error.count()).toBe(0);
    });

    it("finds the parents of the e2e merge among the model folder's checkpoints, ranked with scores", async () => {
      await page.locator('[data-tab="analyse"]').click();
      await page.locator("input[data-parents-merged]").fill(join(demo.dir, OUTPUT));
      await page.locator("button[data-run-parents]").click();
      const pairs = page.locator("tr[data-parent-pair]");
      await expect.poll(() => pairs.count(), { timeout: 30_000 }).toBeGreaterThan(0);
      const best = await pairs.first().locator("td").allTextContents();
      // the GyozaMix recipe mixes the source models, and the demo's other merges mix the same ones: any
      // of them may pair up to explain it, but never the merge itself
      for (const name of [best[1], best[2]]) {
        expect(name).toMatch(/\.safetensors$/);
        expect(name).not.toBe(basename(OUTPUT));
      }
      expect(Number(best[3])).toBeGreaterThanOrEqual(0);
      expect(await page.locator('svg[data-chart="parents"] rect').count()).toBe(26);
      await page.locator("[data-find-parents]").scrollIntoViewIfNeeded();
      await shot("find-parents");
    });

    it("recovers the block weights of a two-model merge and opens the recipe in the builder", async () => {
      const [a, b] = ["models/anime-detail.safetensors", "models/composition.safetensors"].map((path) =>
        join(demo.dir, path),
      );
      const merged = join(demo.dir, "out/e2e-grad-v.safetensors");
      const yaml = [
        "gyoza: 1",
        "inputs:",
        `  a: { path: ${a} }`,
        `  b: { path: ${b} }`,
        "steps:",
        "  m: { method: weighted_sum, inputs: { a: a, b: b }, alpha: GRAD_V }",
        `output: { path: ${merged}, dtype: fp32 }`,
      ].join("\n");
      const { id } = await apiCall<{ id: string }>("/api/jobs", { body: { kind: "merge", yaml } });
      await expect.poll(async () => (await apiCall<JobView>(`/api/jobs/${id}`)).state).toBe("done");
      await page.locator("input[data-recover-merged]").fill(merged);
      await page.locator("input[data-recover-a]").fill(a!);
      await page.locator("input[data-recover-b]").fill(b!);
      await page.locator("button[data-run-recover]").click();
      await expect
        .poll(() => textOf(page.locator("[data-recover-preset]")), { timeout: 30_000 })
        .toBe("GRAD_V");
      expect(await page.locator('svg[data-chart="recover"] rect').count()).toBe(26);
      await shot("recover");
      await page.locator("button[data-open-recipe]").click();
      await expect.poll(() => page.locator('[data-tab="builder"]').getAttribute("class")).toContain("on");
      const recipe = await page.locator("textarea[data-yaml]").inputValue();
      expect(recipe).toContain(a!);
      expect(recipe).toContain(b!);
      await expect.poll(() => page.locator("section.step [role=slider]").count()).toBe(26);
      await shot("builder-recovered");
    });

    it("shows a dropped image's generation data and the model version it came from, and copies its metadata onto another image", async () => {
      const image = demo.versions.find((version) => version.name === "v1")!.images[0]!;
      const parameters = textsByKey((await readMetadataOf({ bytes: readFileSync(image), name: image })).texts)
        .parameters!;
      await page.locator('[data-tab="images"]').click();
      await dropFile(page.locator(".split label.drop"), image);
      await expect
        .poll(() => textOf(page.locator("[data-made-with]")), { timeout: 15_000 })
        .toContain("GyozaMix@v1");
      const prompt = parameters.split("\n")[0]!;
      expect(await page.locator("dl.gen").textContent()).toContain(prompt);
      // copy: the target is the same picture without metadata
      const bare = join(dir, "bare-target.png");
      writeFileSync(bare, (await stripMetadata({ bytes: readFileSync(image), name: image })).bytes);
      await page.locator('[data-copy-slot="source"] input[type=file]').setInputFiles(image);
      await page.locator('[data-copy-slot="target"] input[type=file]').setInputFiles(bare);
      await page.locator("button[data-copy-run]").click();
      await expect.poll(() => page.locator("[data-copy-download]").count()).toBe(1);
      expect(await textOf(page.locator("[data-copied]"))).toContain("parameters");
      expect(await page.locator("[data-copy-download]").getAttribute("download")).toBe(
        "bare-target-with-metadata.png",
      );
      await page.locator("[data-copied] button", { hasText: "inspect it" }).click();
      await expect.poll(() => textOf(page.locator("[data-made-with]"))).toContain("GyozaMix@v1");
      await shot("images");
    });

    it("loads nothing from other origins and logs no errors", () => {
      expect(problems).toEqual([]);
    });
  },
);
