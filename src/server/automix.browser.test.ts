import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { type ManualStudyRun, recordDemoStudy, startManualStudy } from "../test-support/automix-study.js";
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
 * best-so-far line, and the best candidate opened in the builder; and a study with a manual scorer
 * running in this process, rated by a click on its best image in the Rate panel.
 */
requireChromiumWhenAsked();

describe.skipIf(CHROMIUM_MISSING)(
  `the Automix tab in headless Chromium${CHROMIUM_MISSING ? ` (skipped: ${CHROMIUM_SKIP_REASON})` : ""}`,
  () => {
    let dir = "";
    useTempDirWithHashCache("gyoza-automix-browser-", (path) => (dir = path));
    let server: GyozaServer;
    let app: AppPage;
    let rated: ManualStudyRun;

    beforeAll(async () => {
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const webDir = join(dir, "web");
      await buildWebClient(webDir);
      recordDemoStudy(dir, join(dir, "library.db"), "demo");
      rated = await startManualStudy(dir, join(dir, "library.db"), "rate-me", { budget: 2, seeds: [1, 2] });
      server = await createServer({ library: join(dir, "library.db"), roots: [dir], webDir });
      app = await openAppPage(await server.listen(), {
        // the builder's default recipe names the demo library's models, not in this one
        expectedRefusal: (path) => path === "/api/recipes/plan",
      });
    }, 120_000);

    afterAll(async () => {
      await rated?.close();
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

    it("shows a short study name whole in the study list, beside a long status line", async () => {
      const { page } = app;
      await page.click('nav [data-tab="automix"]');
      const name = page.locator('[data-study="demo"] .mono');
      await name.waitFor();
      expect(await name.textContent()).toBe("demo");
      const fits = await name.evaluate((el) => el.scrollWidth <= el.clientWidth && el.clientWidth > 0);
      expect(fits).toBe(true);
    });

    it("rates a pending trial by a click on its best image, the next by typed scores: the running study records both and finishes", {
      timeout: 60_000,
    }, async () => {
      const { page } = app;
      await page.click('nav [data-tab="automix"]');
      await page.click('[data-study="rate-me"]');
      const trial = page.locator('[data-rate] [data-rate-trial="0"]');
      // the study process asks for the rating once trial 0's images exist; the tab polls every 2 s
      await trial.waitFor({ timeout: 30_000 });
      expect(await trial.locator("[data-pick]").count()).toBe(2);
      await expect
        .poll(() =>
          trial
            .locator("img")
            .evaluateAll((imgs) =>
              imgs.every((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0),
            ),
        )
        .toBe(true);
      await page.screenshot({ path: join(SCREENSHOT_DIR, "automix-rate.png"), fullPage: true });
      await trial.locator('[data-pick="1"]').click();
      const next = page.locator('[data-rate] [data-rate-trial="1"]');
      await next.waitFor({ timeout: 30_000 });
      await next.locator("[data-type-scores]").click();
      await next.locator('[data-score="0"]').fill("2.5");
      await next.locator('[data-score="1"]').fill("-1");
      await next.locator("[data-send-scores]").click();
      const result = await rated.result;
      expect(result.status).toBe("finished");
      expect(result.trials[0]).toMatchObject({ number: 0, state: "done", score: 0.5 });
      expect(result.trials[0]!.scores).toEqual({ pick: { scores: [0, 1], tally: 0.5 } });
      expect(result.trials[1]).toMatchObject({ number: 1, state: "done", score: 0.75 });
      expect(result.trials[1]!.scores!.pick!.scores).toEqual([2.5, -1]);
      await expect.poll(() => page.locator("[data-rate]").count()).toBe(0);
      expect(app.problems).toEqual([]);
    });
  },
);
