import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { recordDemoStudy } from "../test-support/automix-study.js";
import {
  type AppPage,
  buildWebClient,
  CHROMIUM_MISSING,
  CHROMIUM_SKIP_REASON,
  openAppPage,
  requireChromiumWhenAsked,
  SCREENSHOT_DIR,
} from "../test-support/browser-app.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { createServer, type GyozaServer } from "./create-server.js";

/**
 * The Automix tab end to end: a study recorded in the library (3 scored trials, 1 failed, 1
 * pending), shown by gyoza serve in headless chromium: the chart's points, the failed mark, the
 * best-so-far line, and the best candidate opened in the builder.
 */
requireChromiumWhenAsked();

describe.skipIf(CHROMIUM_MISSING)(
  `the Automix tab in headless Chromium${CHROMIUM_MISSING ? ` (skipped: ${CHROMIUM_SKIP_REASON})` : ""}`,
  () => {
    let dir = "";
    useTempDirWithHashCache("gyoza-automix-browser-", (path) => (dir = path));
    let server: GyozaServer;
    let app: AppPage;

    beforeAll(async () => {
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const webDir = join(dir, "web");
      await buildWebClient(webDir);
      recordDemoStudy(dir, join(dir, "library.db"), "demo");
      server = await createServer({ library: join(dir, "library.db"), roots: [dir], webDir });
      app = await openAppPage(await server.listen(), {
        // the builder's default recipe names the demo library's models, not in this one
        expectedRefusal: (path) => path === "/api/recipes/plan",
      });
    }, 120_000);

    afterAll(async () => {
      await app?.browser.close();
      await server?.close();
    });

    it("plots one point per scored trial, marks the failed one and draws the best-so-far line", async () => {
      const { page } = app;
      await page.click('nav [data-tab="automix"]');
      const chart = page.locator("[data-study-view] [data-score-chart]");
      await chart.waitFor();
      expect(await chart.locator("[data-trial-point]").count()).toBe(3);
      expect(await chart.locator("[data-failed-point]").count()).toBe(1);
      expect(await chart.locator("[data-best-line]").count()).toBe(1);
      expect(await page.locator("[data-best-trials] tbody tr").count()).toBe(3);
      expect(await page.locator("[data-best-trials] tbody tr").first().textContent()).toContain("0.7000");
      await page.screenshot({ path: join(SCREENSHOT_DIR, "automix.png"), fullPage: true });
      expect(app.problems).toEqual([]);
    });

    it("opens the best candidate in the builder with the study in its description", async () => {
      const { page } = app;
      await page.click("[data-open-best]");
      const yaml = page.locator("textarea[data-yaml]");
      await yaml.waitFor({ state: "visible" });
      await expect.poll(async () => (await yaml.inputValue()).includes('study "demo"')).toBe(true);
      const recipe = parseYaml(await yaml.inputValue()) as { output: { description: string } };
      expect(recipe.output.description).toMatch(/trial 2, score 0.7/);
      expect(app.problems).toEqual([]);
    });
  },
);
