import { existsSync } from "node:fs";
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GyozaError } from "../errors.js";
import type { Recipe } from "../recipe/index.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { evaluateCandidate, type StageCandidate, type StudyObjective } from "./evaluate-candidate.js";
import type { ImageScorer, WeightScorer } from "./scorers/scorer.js";
import { standInScore } from "./scorers/standin-scorer.js";
import { StandInBackend } from "./standin-backend.js";

let dir = "";
useTempDirWithHashCache("gyoza-evaluate-candidate-", (path) => {
  dir = path;
});

const RECIPE = { version: 1 } as unknown as Recipe;
const PARAMS = {
  negativePrompt: "",
  steps: 4,
  cfg: 5,
  sampler: "Euler",
  scheduler: "Automatic",
  width: 256,
  height: 256,
  clipSkip: 1,
};

/** A stage that writes `bytes` as the candidate into the backend's model folder, deleting it on release. */
function stageInto(folder: string, bytes: Buffer, released: string[]): StageCandidate {
  return async (_recipe, trial) => {
    await mkdir(folder, { recursive: true });
    const file = join(folder, `candidate-${trial}.safetensors`);
    await writeFile(file, bytes);
    return {
      file,
      autov3: "ab".repeat(32),
      release: async () => {
        released.push(file);
        await rm(file, { force: true });
      },
    };
  };
}

const brightness: ImageScorer = {
  name: "brightness",
  kind: "images",
  score: (images) => Promise.all(images.map((image) => standInScore(image.png))),
};
const fileSize: WeightScorer = {
  name: "size",
  kind: "weights",
  score: async (candidate) => [(await stat(candidate.path)).size],
};

describe("evaluateCandidate", () => {
  it("merges, generates prompts × seeds, scores each objective, combines them and releases the merge", async () => {
    const models = join(dir, "models-a");
    const released: string[] = [];
    const objectives: StudyObjective[] = [
      { name: "look", weight: 1, tally: "mean", scorer: brightness },
      { name: "size", weight: 0.001, tally: "mean", scorer: fileSize },
    ];
    const trial = await evaluateCandidate({
      trial: 3,
      x: [0.25, 0.75],
      recipe: () => RECIPE,
      objectives,
      images: { backend: new StandInBackend(models), prompts: ["a", "b"], seeds: [1, 2, 3], params: PARAMS },
      stage: stageInto(models, Buffer.alloc(4096, 7), released),
      worker: "gpu-0",
    });
    expect(trial.state).toBe("done");
    expect(trial.number).toBe(3);
    expect(trial.worker).toBe("gpu-0");
    expect(trial.autov3).toBe("ab".repeat(32));
    expect(trial.scores?.look?.scores).toHaveLength(6);
    expect(trial.scores?.size?.scores).toEqual([4096]);
    expect(Object.keys(trial.timings ?? {}).sort()).toEqual(["generate", "merge", "score", "total"]);
    expect(trial.score).toBeTypeOf("number");
    expect(Number.isFinite(trial.score)).toBe(true);
    expect(released).toEqual([join(models, "candidate-3.safetensors")]);
    expect(existsSync(released[0]!)).toBe(false);
  });

  it("records a point the space cannot turn into a recipe as a failed trial, and stages nothing", async () => {
    const released: string[] = [];
    let staged = 0;
    const trial = await evaluateCandidate({
      trial: 0,
      x: [0.5],
      recipe: () => {
        throw new GyozaError("usage", "slot IN03 is out of range");
      },
      objectives: [{ name: "size", weight: 1, tally: "mean", scorer: fileSize }],
      stage: async (...args) => {
        staged++;
        return stageInto(join(dir, "models-b"), Buffer.alloc(8), released)(...args);
      },
    });
    expect(trial.state).toBe("failed");
    expect(trial.score).toBeNull();
    expect(trial.error).toBe("slot IN03 is out of range");
    expect(staged).toBe(0);
  });

  it("releases the merge when a scorer throws, and records the trial as failed with the scorer's message", async () => {
    const models = join(dir, "models-c");
    const released: string[] = [];
    const broken: WeightScorer = {
      name: "broken",
      kind: "weights",
      score: async () => {
        throw new Error("scoring server answered 500");
      },
    };
    const trial = await evaluateCandidate({
      trial: 1,
      x: [0.5],
      recipe: () => RECIPE,
      objectives: [{ name: "broken", weight: 1, tally: "mean", scorer: broken }],
      stage: stageInto(models, Buffer.alloc(8), released),
    });
    expect(trial.state).toBe("failed");
    expect(trial.error).toBe("scoring server answered 500");
    expect(trial.worker).toBeNull();
    expect(released).toHaveLength(1);
    expect(existsSync(released[0]!)).toBe(false);
  });

  it("refuses an image objective without planned images, as a failed trial that says so", async () => {
    const trial = await evaluateCandidate({
      trial: 2,
      x: [0.5],
      recipe: () => RECIPE,
      objectives: [{ name: "look", weight: 1, tally: "mean", scorer: brightness }],
      stage: stageInto(join(dir, "models-d"), Buffer.alloc(8), []),
    });
    expect(trial.state).toBe("failed");
    expect(trial.error).toMatch(/image scorer needs images/);
  });

  it("throws an interrupt instead of recording it, so a resume evaluates the trial again", async () => {
    const controller = new AbortController();
    const released: string[] = [];
    const models = join(dir, "models-e");
    const stage = stageInto(models, Buffer.alloc(8), released);
    await expect(
      evaluateCandidate({
        trial: 4,
        x: [0.5],
        recipe: () => RECIPE,
        objectives: [{ name: "look", weight: 1, tally: "mean", scorer: brightness }],
        images: { backend: new StandInBackend(models), prompts: ["a"], seeds: [1], params: PARAMS },
        stage: async (...args) => {
          const staged = await stage(...args);
          controller.abort(new Error("Ctrl-C"));
          return staged;
        },
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ code: "interrupted" });
    expect(released).toHaveLength(1);
  });
});
