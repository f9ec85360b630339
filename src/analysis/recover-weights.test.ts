import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRecipe } from "../engine/run-recipe.js";
import { type GyozaError, isGyozaError } from "../errors.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { Checkpoint } from "../io/tensor.js";
import { loadKernel } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { recipeFromData, saveRecipe } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { type Recovery, recoverWeights } from "./recover-weights.js";
import { recoveryRecipe } from "./recovery-recipe.js";

let dir: string;
let kernel: MergeKernel;
const path = (name: string) => join(dir, name);

/** Deterministic weights in [0.05, 0.95]: a small LCG so the test needs no seedable library. */
function randomWeights(count: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return 0.05 + 0.9 * (state / 2 ** 31);
  });
}

async function merge(
  name: string,
  inputs: Record<string, string>,
  step: Record<string, unknown>,
  dtype: "fp16" | "fp32",
): Promise<string> {
  const output = path(name);
  const recipe = recipeFromData(
    {
      gyoza: 1,
      inputs: Object.fromEntries(Object.entries(inputs).map(([key, file]) => [key, { path: path(file) }])),
      steps: { m: step },
      output: { path: output, dtype, metadata: "none" },
    },
    { sourceName: "test" },
  );
  await runRecipe(recipe, { kernel });
  return output;
}

async function recover(merged: string, parents: string[]): Promise<Recovery> {
  const models: Checkpoint[] = await Promise.all(
    [merged, ...parents].map((file) => openCheckpoint(path(file))),
  );
  try {
    return await recoverWeights(models[0]!, models.slice(1), { kernel });
  } finally {
    await Promise.all(models.map((model) => model.close()));
  }
}

function expectWeights(recovery: Recovery, expected: readonly number[], tolerance: number): void {
  const got = recovery.slots.map((slot) => slot.alpha!);
  expect(got).toHaveLength(expected.length);
  const worst = Math.max(...got.map((value, i) => Math.abs(value - expected[i]!)));
  expect(worst).toBeLessThan(tolerance);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-recover-"));
  kernel = await loadKernel();
  for (const [name, seed] of [
    ["a", 1],
    ["b", 2],
    ["c", 3],
    ["u", 9],
  ] as const) {
    await writeSyntheticCheckpoint(path(`${name}32.safetensors`), {
      layout: "sd1-ldm",
      size: "micro",
      dtype: "F32",
      seed,
    });
    await writeSyntheticCheckpoint(path(`${name}16.safetensors`), {
      layout: "sd1-ldm",
      size: "micro",
      dtype: "F16",
      seed,
    });
  }
  await writeSyntheticCheckpoint(
    path("a16.ckpt"),
    { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: 1 },
    "ckpt",
  );
  // the same layout at another size (widths ÷ 16 instead of ÷ 64): the shape of no merge of the others
  await writeSyntheticCheckpoint(path("bigger16.safetensors"), {
    layout: "sd1-ldm",
    size: "tiny",
    dtype: "F16",
    seed: 4,
  });
  for (const [name, seed] of [
    ["xa", 11],
    ["xb", 12],
  ] as const) {
    await writeSyntheticCheckpoint(path(`${name}.safetensors`), {
      layout: "sdxl-sgm",
      size: "micro",
      dtype: "F16",
      seed,
    });
  }
}, 180_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("recoverWeights", { timeout: 120_000 }, () => {
  it("recovers random block weights of a weighted sum to 1e-3 from fp32 files", async () => {
    const weights = randomWeights(26, 7);
    const merged = await merge(
      "ws32.safetensors",
      { a: "a32.safetensors", b: "b32.safetensors" },
      { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: weights },
      "fp32",
    );
    const recovery = await recover("ws32.safetensors", ["a32.safetensors", "b32.safetensors"]);
    expect(merged).toContain("ws32");
    expectWeights(recovery, weights, 1e-3);
    expect(recovery.explained).toBe(true);
    expect(recovery.overrides).toEqual([]);
    expect(recovery.vae?.policy).toBe("keep-a");
    expect(Object.keys(recovery.alpha)).toEqual([
      "BASE",
      ...Array.from({ length: 12 }, (_, i) => `IN${String(i).padStart(2, "0")}`),
      "M00",
      ...Array.from({ length: 12 }, (_, i) => `OUT${String(i).padStart(2, "0")}`),
    ]);
  });

  it("recovers random block weights of a weighted sum to 2e-3 from fp16 files, across ckpt and safetensors", async () => {
    const weights = randomWeights(26, 8);
    await merge(
      "ws16.safetensors",
      { a: "a16.safetensors", b: "b16.safetensors" },
      { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: weights },
      "fp16",
    );
    expectWeights(await recover("ws16.safetensors", ["a16.ckpt", "b16.safetensors"]), weights, 2e-3);
    // the same parents widened to fp32: the dtype of a file does not matter, only its values
    await merge(
      "a16as32.safetensors",
      { a: "a16.safetensors", b: "b16.safetensors" },
      { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0 },
      "fp32",
    );
    expectWeights(
      await recover("ws16.safetensors", ["a16as32.safetensors", "b16.safetensors"]),
      weights,
      2e-3,
    );
  });

  it("finds an elemental override and keeps it out of its block's weight", async () => {
    const weights = randomWeights(26, 9).map((w) => Math.min(w, 0.6));
    await merge(
      "el16.safetensors",
      { a: "a16.safetensors", b: "b16.safetensors" },
      {
        method: "weighted_sum",
        inputs: { a: "a", b: "b" },
        alpha: weights,
        overrides: [
          { block: "OUT04", pattern: "attn2", value: 0.9 },
          { block: "IN07", pattern: "ff.net", value: 0.95 },
        ],
      },
      "fp16",
    );
    const recovery = await recover("el16.safetensors", ["a16.safetensors", "b16.safetensors"]);
    expectWeights(recovery, weights, 2e-3);
    const found = recovery.overrides.map((o) => ({
      block: o.block,
      pattern: o.pattern,
      value: Number(o.value.toFixed(2)),
    }));
    expect(found).toEqual([
      { block: "IN07", pattern: "ff", value: 0.95 },
      { block: "OUT04", pattern: "attn2", value: 0.9 },
    ]);
    expect(recovery.residual).toBeLessThan(0.01);
  });

  it("recovers add-difference weights from three parents", async () => {
    const weights = randomWeights(26, 10);
    await merge(
      "ad32.safetensors",
      { a: "a32.safetensors", b: "b32.safetensors", c: "c32.safetensors" },
      { method: "add_difference", inputs: { a: "a", b: "b", c: "c" }, alpha: weights },
      "fp32",
    );
    const recovery = await recover("ad32.safetensors", [
      "a32.safetensors",
      "b32.safetensors",
      "c32.safetensors",
    ]);
    expect(recovery.mode).toBe("add_difference");
    expectWeights(recovery, weights, 1e-3);
    await merge(
      "ad16.safetensors",
      { a: "a16.safetensors", b: "b16.safetensors", c: "c16.safetensors" },
      { method: "add_difference", inputs: { a: "a", b: "b", c: "c" }, alpha: weights },
      "fp16",
    );
    expectWeights(
      await recover("ad16.safetensors", ["a16.safetensors", "b16.safetensors", "c16.safetensors"]),
      weights,
      2e-3,
    );
  });

  it("recovers SDXL block weights (20 slots) and names the nearest preset", async () => {
    await merge(
      "xl.safetensors",
      { a: "xa.safetensors", b: "xb.safetensors" },
      { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: "COSINE" },
      "fp16",
    );
    const recovery = await recover("xl.safetensors", ["xa.safetensors", "xb.safetensors"]);
    expect(recovery.slots).toHaveLength(20);
    expect(recovery.nearestPreset).toMatchObject({ name: "COSINE", swapped: false });
    expect(recovery.nearestPreset!.distance).toBeLessThan(2e-3);
  });

  it("reports an unrelated model as unexplained", async () => {
    const recovery = await recover("u16.safetensors", ["a16.safetensors", "b16.safetensors"]);
    expect(recovery.explained).toBe(false);
    expect(recovery.residual).toBeGreaterThan(0.5);
    expect(Math.min(...recovery.slots.map((slot) => slot.residual))).toBeGreaterThan(0.5);
  });

  it("emits a recipe that rebuilds the merged model", async () => {
    const weights = randomWeights(26, 11);
    await merge(
      "rb.safetensors",
      { a: "a32.safetensors", b: "b32.safetensors" },
      { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: weights },
      "fp32",
    );
    const recovery = await recover("rb.safetensors", ["a32.safetensors", "b32.safetensors"]);
    const recipe = recoveryRecipe(recovery, {
      parents: [path("a32.safetensors"), path("b32.safetensors")],
      merged: path("rb.safetensors"),
      dtype: "fp32",
    });
    expect(saveRecipe(recipe)).toContain("method: weighted_sum");
    await runRecipe(recipe, { kernel });
    const rebuilt = await recover("rb-rebuilt.safetensors", ["a32.safetensors", "b32.safetensors"]);
    expectWeights(rebuilt, weights, 1e-3);
  });

  it("refuses parents of another architecture before reading any tensor", async () => {
    const error = await recover("a16.safetensors", ["xa.safetensors", "xb.safetensors"]).catch(
      (e: unknown) => e,
    );
    expect(isGyozaError(error, "architecture-mismatch")).toBe(true);
  });

  it("refuses a parent whose tensor shapes differ from the merged model's instead of fitting what is left", async () => {
    const error = await recover("u16.safetensors", ["a16.safetensors", "bigger16.safetensors"]).catch(
      (e: unknown) => e,
    );
    expect(isGyozaError(error, "architecture-mismatch")).toBe(true);
    expect((error as Error).message).toMatch(
      /cannot be a parent of .*u16\.safetensors: \d+ of \d+ compared tensors have other shapes/,
    );
    expect((error as GyozaError).file).toBe(path("bigger16.safetensors"));
  });

  it("never calls a fit explained when no slot was solved (the parents are identical)", async () => {
    const recovery = await recover("u16.safetensors", ["a16.safetensors", "a16.ckpt"]);
    expect(Object.values(recovery.alpha).every((alpha) => alpha === null)).toBe(true);
    expect(recovery.explained).toBe(false);
    expect(recovery.solvedSlots).toBe(0);
  });
});
