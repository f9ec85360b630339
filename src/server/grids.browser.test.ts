import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  type AppPage,
  buildWebClient,
  CHROMIUM_MISSING,
  CHROMIUM_SKIP_REASON,
  openAppPage,
  requireChromiumWhenAsked,
  SCREENSHOT_DIR,
} from "../test-support/browser-app.js";
import { makeStandinGrid } from "../test-support/standin-grid.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { createServer, type GyozaServer } from "./create-server.js";

/**
 * The Grids tab end to end: a real 2×2 grid (OUT03 × clip skip, one cell failed) made by gyoza grid
 * through the ComfyUI stand-in, shown by gyoza serve in headless chromium; a click on a cell opens
 * its recipe in the builder.
 */
requireChromiumWhenAsked();

describe.skipIf(CHROMIUM_MISSING)(
  `the Grids tab in headless Chromium${CHROMIUM_MISSING ? ` (skipped: ${CHROMIUM_SKIP_REASON})` : ""}`,
  () => {
    let dir = "";
    useTempDirWithHashCache("gyoza-grids-browser-", (path) => (dir = path));
    let server: GyozaServer;
    let app: AppPage;

    beforeAll(async () => {
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const webDir = join(dir, "web");
      await buildWebClient(webDir);
      await makeStandinGrid(dir, { failFirst: "CUDA out of memory" });
      server = await createServer({ library: join(dir, "library.db"), roots: [dir], webDir });
      app = await openAppPage(await server.listen());
    }, 120_000);

    afterAll(async () => {
      await app?.browser.close();
      await server?.close();
    });

    it("shows the grid as a matrix with its axes in the user's terms and the failed cell's reason", async () => {
      const { page } = app;
      await page.click('nav [data-tab="grids"]');
      const view = page.locator("[data-grid-view]");
      await view.waitFor();
      expect(await view.locator("h2").textContent()).toBe("TinyMix");
      expect(await view.locator("[data-x-label]").allTextContents()).toEqual(["OUT03 = 0", "OUT03 = 0.5"]);
      expect(await view.locator("[data-y-label]").allTextContents()).toEqual([
        "clip_skip = 1",
        "clip_skip = 2",
      ]);
      expect(await view.locator('[data-cell="0_0_0"]').textContent()).toMatch(/node 3 .*CUDA out of memory/);
      // the three made cells show their images, loaded
      const images = view.locator("[data-cell] img");
      await expect.poll(() => images.count()).toBe(3);
      await expect
        .poll(() =>
          images.evaluateAll((all) =>
            all.every((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0),
          ),
        )
        .toBe(true);
      await page.screenshot({ path: join(SCREENSHOT_DIR, "grids.png"), fullPage: true });
    });

    it("opens a clicked cell's recipe in the builder, with that cell's OUT03 weight", async () => {
      const { page } = app;
      // The builder's default recipe names the demo library's models, not in this one: its plan is refused.
      expect(app.problems).toEqual(["HTTP 404 for /api/recipes/plan"]);
      app.problems.length = 0;
      await page.click('[data-cell="1_0_0"]');
      const detail = page.locator("[data-cell-detail]");
      expect(await detail.locator("h2").textContent()).toBe("OUT03 = 0.5 · clip_skip = 1");
      expect(await detail.textContent()).toContain("a bowl of gyoza");
      await page.screenshot({ path: join(SCREENSHOT_DIR, "grids-cell.png"), fullPage: true });
      await detail.locator("[data-open-recipe]").click();
      const yaml = page.locator("textarea[data-yaml]");
      await yaml.waitFor({ state: "visible" });
      await expect.poll(async () => (await yaml.inputValue()).includes("models/a.safetensors")).toBe(true);
      const recipe = parseYaml(await yaml.inputValue()) as { steps: { mix: { alpha: number[] } } };
      expect(recipe.steps.mix.alpha[17]).toBe(0.5); // BASE, IN00–IN11, M00, OUT00–OUT03
      // the builder plans it: its inputs are found from the server's base folder
      await expect
        .poll(async () => (await page.locator("[data-plan]").textContent()) ?? "", { timeout: 15_000 })
        .toContain("a.safetensors");
      expect(await page.locator("[data-plan-error]").count()).toBe(0);
      expect(await page.locator('nav [data-tab="builder"]').getAttribute("class")).toContain("on");
      expect(app.problems).toEqual([]);
    });

    it("opens the same cell's recipe again after the builder's recipe was edited", async () => {
      const { page } = app;
      const yaml = page.locator("textarea[data-yaml]");
      const opened = await yaml.inputValue();
      await yaml.fill(opened.replace("models/a.safetensors", "models/b.safetensors"));
      await page.click('nav [data-tab="grids"]');
      await page.click('[data-cell="1_0_0"]');
      await page.locator("[data-cell-detail] [data-open-recipe]").click();
      await expect.poll(() => yaml.inputValue()).toBe(opened);
    });
  },
);
