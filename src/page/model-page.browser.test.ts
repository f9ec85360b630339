import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDemoLibrary, type DemoLibrary } from "../demo/build-demo-library.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";

/**
 * The model page as a browser shows it: Debian's chromium (`apt-get install chromium`), driven by
 * playwright-core, which never downloads a browser. Without chromium the test is skipped, unless
 * GYOZA_REQUIRE_CHROMIUM=1 (CI) makes that a failure. GYOZA_CHROMIUM names another binary;
 * GYOZA_PAGE_SCREENSHOT is where the screenshot goes (default: inside the temp dir).
 */
const CHROMIUM =
  process.env.GYOZA_CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
const REQUIRED = process.env.GYOZA_REQUIRE_CHROMIUM === "1";
const MISSING = CHROMIUM === undefined || !existsSync(CHROMIUM);
const SKIP_REASON = "no chromium at /usr/bin/chromium (apt-get install chromium, or set GYOZA_CHROMIUM)";

if (MISSING && REQUIRED) {
  it("finds chromium (GYOZA_REQUIRE_CHROMIUM=1)", () => {
    throw new Error(`GYOZA_REQUIRE_CHROMIUM=1 but ${SKIP_REASON}`);
  });
}

describe.skipIf(MISSING)(
  `the model page in headless Chromium${MISSING ? ` (skipped: ${SKIP_REASON})` : ""}`,
  () => {
    let dir = "";
    useTempDirWithHashCache("gyoza-page-browser-", (path) => (dir = path));
    let demo: DemoLibrary;
    let browser: Browser;
    let page: Page;
    const problems: string[] = [];

    beforeAll(async () => {
      demo = await buildDemoLibrary(join(dir, "demo"), { size: "micro", imageSize: [256, 384] });
      browser = await chromium.launch({ executablePath: CHROMIUM! });
      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      await context.grantPermissions(["clipboard-read", "clipboard-write"]);
      page = await context.newPage();
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console: ${message.text()}`);
      });
      page.on("requestfailed", (request) => problems.push(`failed request: ${request.url()}`));
      page.on("request", (request) => {
        if (!request.url().startsWith("file://"))
          problems.push(`request outside the page folder: ${request.url()}`);
      });
      await page.goto(pathToFileURL(demo.page.page).href);
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
    });

    it("shows both versions, newest first", async () => {
      expect(await page.locator("section.version h2").allInnerTexts()).toEqual(["v2", "v1"]);
    });

    it("shows every file of each version with all its hashes", async () => {
      for (const [index, version] of demo.data.versions.entries()) {
        const section = page.locator("section.version").nth(index);
        expect(version.files.length).toBeGreaterThan(0);
        for (const file of version.files) {
          const row = section.locator("tr.file", { hasText: file.name });
          await expect.poll(() => row.count()).toBe(1);
          for (const name of ["SHA256", "AutoV2", "AutoV3", "BLAKE3", "CRC32"]) {
            const value = file.hashes[name]!;
            expect(value).toMatch(/^[0-9A-F]+$/);
            expect(await row.locator("code", { hasText: value }).count()).toBeGreaterThan(0);
          }
        }
      }
      expect(demo.data.versions[0]!.files.map((file) => file.name)).toEqual([
        "gyozamix-v2-fp16.safetensors",
        "gyozamix-v2-fp32-full.safetensors",
      ]);
    });

    it("shows every thumbnail, loaded from the page folder", async () => {
      const thumbnails = page.locator(".gallery button.thumb img");
      expect(await thumbnails.count()).toBe(4);
      const widths = await thumbnails.evaluateAll((images) =>
        images.map((image) => (image as unknown as { naturalWidth: number }).naturalWidth),
      );
      for (const width of widths) expect(width).toBeGreaterThan(0);
    });

    it("opens an image's generation data on click, naming the hash of the version's own file", async () => {
      const v2 = page.locator("section.version").first();
      await v2.locator("button.thumb").first().click();
      const dialog = page.locator("dialog[open]");
      await expect.poll(() => dialog.count()).toBe(1);
      const infotext = (await dialog.locator("pre.infotext").textContent()) ?? "";
      const autoV2 = demo.data.versions[0]!.files[0]!.hashes.AutoV2!.toLowerCase();
      expect(infotext).toContain(`Model hash: ${autoV2}`);
      expect(infotext).toContain("Negative prompt: lowres, bad anatomy, AuroraNegative");
      expect(await dialog.locator("button.copy-generation").getAttribute("data-copy")).toBe(infotext);
      // the full-size original loads when its dialog opens
      const full = dialog.locator(".full img");
      await expect
        .poll(() => full.evaluate((image) => (image as unknown as { naturalWidth: number }).naturalWidth))
        .toBe(256);
      await page.screenshot({
        path: process.env.GYOZA_PAGE_SCREENSHOT ?? join(dir, "model-page-dialog.png"),
      });
      await dialog.locator("button[data-close]").click();
      await expect.poll(() => page.locator("dialog[open]").count()).toBe(0);
    });

    it("copies a hash with its copy button", async () => {
      const button = page
        .locator("section.version")
        .first()
        .locator("tr.file")
        .first()
        .locator("button[data-copy]")
        .first();
      await button.click();
      await expect.poll(() => button.textContent()).toBe("copied");
      const sha256 = demo.data.versions[0]!.files[0]!.hashes.SHA256!;
      expect(await page.evaluate("navigator.clipboard.readText()")).toBe(sha256);
    });

    it("draws the recipe tree and a block-weight chart per MBW step", async () => {
      const v2 = page.locator("section.version").first();
      const tree = (await v2.locator("ul.tree").textContent()) ?? "";
      expect(tree.indexOf("final")).toBeLessThan(tree.indexOf("composition"));
      expect(tree).toContain("bake vae/kl-f8-anime2.ckpt");
      expect(await v2.locator("figure.chart svg").count()).toBe(2);
      expect(await v2.locator("figure.chart svg").first().locator("text.slot").count()).toBe(26);
    });

    it("loads nothing from outside the page folder and reports no errors", async () => {
      await page.screenshot({ path: join(dir, "model-page.png"), fullPage: true });
      expect(problems).toEqual([]);
    });
  },
);
