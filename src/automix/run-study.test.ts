import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runRecipe } from "../engine/run-recipe.js";
import { loadKernel } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { openLibrary } from "../library/open-library.js";
import { type Recipe, recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { mergeIntoFolder, runStudy, type StudySpace } from "./run-study.js";
import { weightSpaceScorer } from "./scorers/weight-space.js";
import { createStudy, listTrials, type StoredTrial } from "./study-store.js";

let dir = "";
let kernel: MergeKernel;
useTempDirWithHashCache("gyoza-run-study-", (path) => (dir = path));

/** The target's alphas: IN blocks 0.2, OUT blocks 0.8 (BASE and M00 follow IN). */
const TARGET = { in: 0.2, out: 0.8 };

function alphas(inValue: number, outValue: number): number[] {
  // BASE, IN00-IN11, M00, OUT00-OUT11
  return [inValue, ...Array(12).fill(inValue), inValue, ...Array(12).fill(outValue)];
}

function baseRecipe(): Recipe {
  return recipeFromData(
    {
      gyoza: 1,
      inputs: { a: { path: "a.safetensors" }, b: { path: "b.safetensors" } },
      steps: { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.5 } },
      output: { path: "unused.safetensors", dtype: "fp32", metadata: "none" },
    },
    { sourceName: "test" },
  );
}

/** Two holes: the IN side's alpha and the OUT side's alpha, each in [0, 1]. */
const space: StudySpace = {
  dimensions: 2,
  toRecipe(x, base) {
    const recipe = structuredClone(base);
    recipe.steps.m!.alpha = alphas(Math.round(x[0]! * 1e4) / 1e4, Math.round(x[1]! * 1e4) / 1e4);
    return recipe;
  },
};

beforeAll(async () => {
  kernel = await loadKernel();
  await writeSyntheticCheckpoint(join(dir, "a.safetensors"), {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F32",
    seed: 1,
  });
  await writeSyntheticCheckpoint(join(dir, "b.safetensors"), {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F32",
    seed: 2,
  });
  const target = baseRecipe();
  target.steps.m!.alpha = alphas(TARGET.in, TARGET.out);
  target.output.path = join(dir, "target.safetensors");
  await runRecipe(target, { baseDir: dir, kernel });
});

async function study(name: string, optimizer: string, budget: number, signal?: AbortSignal, resume = false) {
  const db = openLibrary(join(dir, "library.db"));
  const work = join(dir, `work-${name}`);
  await mkdir(work, { recursive: true });
  try {
    const stored = resume
      ? (await import("./study-store.js")).getStudy(db, name)
      : createStudy(db, {
          name,
          spaceYaml: "test",
          baseRecipe: "test",
          optimizer,
          seed: 11,
          settings: { budget },
        });
    return await runStudy({
      db,
      study: stored,
      space,
      base: baseRecipe(),
      objectives: [
        {
          name: "like-target",
          weight: 1,
          tally: "mean",
          scorer: weightSpaceScorer({ target: join(dir, "target.safetensors"), kernel }),
        },
      ],
      budget,
      stage: mergeIntoFolder(work, dir, (recipe, options) =>
        runRecipe(recipe, { ...options, kernel, hashCacheDir: join(dir, "cache") }),
      ),
      ...(signal ? { signal } : {}),
      worker: "test",
    });
  } finally {
    db.close();
  }
}

const essentials = (trials: readonly StoredTrial[]) =>
  trials.map((t) => ({ number: t.number, x: t.x, state: t.state, score: t.score, autov3: t.autov3 }));

describe("runStudy", () => {
  it("converges on a weight-space objective: TPE finds the target's IN/OUT alphas on tiny synthetic models", {
    timeout: 120_000,
  }, async () => {
    const result = await study("converge", "tpe", 30);
    expect(result.status).toBe("finished");
    expect(result.trials).toHaveLength(30);
    const done = result.trials.filter((t) => t.state === "done");
    const best = done.reduce((a, b) => (b.score! > a.score! ? b : a));
    expect(best.x[0]!).toBeCloseTo(TARGET.in, 1);
    expect(best.x[1]!).toBeCloseTo(TARGET.out, 1);
    expect(best.score!).toBeGreaterThan(-0.1);
    expect(best.score!).toBeGreaterThan(done[0]!.score! + 0.1);
    // every candidate merge was removed once scored
    expect(await readdir(join(dir, "work-converge"))).toEqual([]);
  });

  it("interrupted and resumed, gives the same trials as an uninterrupted run, none repeated or lost", {
    timeout: 120_000,
  }, async () => {
    const whole = await study("whole", "tpe", 8);
    const controller = new AbortController();
    const db = openLibrary(join(dir, "library.db"));
    // stop after the 3rd trial is recorded
    const stopper = setInterval(() => {
      const s = db
        .prepare(
          "SELECT COUNT(*) AS n FROM automix_trials t JOIN automix_studies s ON s.id = t.study_id WHERE s.name = 'split'",
        )
        .get() as { n: number };
      if (s.n >= 3) controller.abort();
    }, 1);
    await expect(study("split", "tpe", 8, controller.signal)).rejects.toMatchObject({
      code: "interrupted",
    });
    clearInterval(stopper);
    const { id } = (await import("./study-store.js")).getStudy(db, "split");
    const partial = listTrials(db, id).length;
    expect(partial).toBeGreaterThanOrEqual(3);
    expect(partial).toBeLessThan(8);
    expect((await import("./study-store.js")).getStudy(db, "split").status).toBe("stopped");
    db.close();
    const resumed = await study("split", "tpe", 8, undefined, true);
    expect(essentials(resumed.trials)).toEqual(essentials(whole.trials));
    expect(resumed.evaluated).toBe(8 - partial);
  });
});
