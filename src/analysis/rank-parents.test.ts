import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRecipe } from "../engine/run-recipe.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { loadKernel } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { compareFits, rankParents } from "./rank-parents.js";

let dir: string;
let kernel: MergeKernel;
const path = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-parents-"));
  kernel = await loadKernel();
  for (const seed of [1, 2, 3, 4]) {
    await writeSyntheticCheckpoint(path(`m${seed}.safetensors`), {
      layout: "sd1-ldm",
      size: "micro",
      dtype: "F16",
      seed,
    });
  }
  // SD 1.x too, but at another size (widths ÷ 16, not ÷ 64): no weighted sum with it made the target
  await writeSyntheticCheckpoint(path("bigger.safetensors"), {
    layout: "sd1-ldm",
    size: "tiny",
    dtype: "F16",
    seed: 6,
  });
  await writeSyntheticCheckpoint(path("xl.safetensors"), {
    layout: "sdxl-sgm",
    size: "micro",
    dtype: "F16",
    seed: 5,
  });
  await runRecipe(
    recipeFromData({
      gyoza: 1,
      inputs: { a: { path: path("m2.safetensors") }, b: { path: path("m4.safetensors") } },
      steps: { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: "REVERSE_COSINE" } },
      output: { path: path("merged.safetensors"), dtype: "fp16", metadata: "none" },
    }),
    { kernel },
  );
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("rankParents", { timeout: 120_000 }, () => {
  it("ranks the true parents first, flags the merged file itself as a copy and skips other architectures and shapes", async () => {
    const files = ["m1", "m2", "m3", "bigger", "m4", "merged", "xl"].map((name) =>
      path(`${name}.safetensors`),
    );
    const merged = await openCheckpoint(path("merged.safetensors"));
    const candidates = await Promise.all(files.map(openCheckpoint));
    try {
      const ranking = await rankParents(merged, candidates, {
        kernel,
        sampleElements: 20_000,
        exactPairs: 2,
      });
      const best = ranking.pairs[0]!;
      expect([best.a, best.b].sort()).toEqual([path("m2.safetensors"), path("m4.safetensors")]);
      expect(best.sampledResidual).toBeLessThan(0.01);
      expect(best.recovery!.explained).toBe(true);
      expect(best.recovery!.nearestPreset).toMatchObject({ name: "REVERSE_COSINE" });
      expect(ranking.pairs[1]!.sampledResidual).toBeGreaterThan(0.3);
      expect(ranking.candidates.find((c) => c.path.endsWith("merged.safetensors"))!.copy).toBe(true);
      expect(ranking.skipped.map((s) => [s.path, s.cause])).toEqual([
        [path("bigger.safetensors"), "shapes"],
        [path("xl.safetensors"), "architecture"],
      ]);
      expect(ranking.skipped[0]!.reason).toMatch(
        /^\d+ of \d+ compared tensors have other shapes than in the target/,
      );
      expect(
        ranking.pairs.every(
          (pair) => pair.a !== path("bigger.safetensors") && pair.b !== path("bigger.safetensors"),
        ),
      ).toBe(true);
      expect(best.sampledSolvedSlots).toBe(26);
      expect(best.recovery!.solvedSlots).toBe(26);
      expect(ranking.slotCount).toBe(26);
      expect(
        ranking.candidates
          .slice(0, 2)
          .map((c) => c.path)
          .sort(),
      ).toEqual([path("m2.safetensors"), path("m4.safetensors")]);
    } finally {
      await Promise.all([merged, ...candidates].map((model) => model.close()));
    }
  });
});

describe("compareFits", () => {
  const none = (residual: number) => ({ solvedSlots: 0, residual });
  const real = (solvedSlots: number, residual: number) => ({ solvedSlots, residual });
  it.each([
    { name: "a fit that solved no slot ranks after a poor real fit", x: none(0), y: real(26, 0.9), sign: 1 },
    { name: "a real fit ranks before a fit that solved no slot", x: real(1, 0.5), y: none(0), sign: -1 },
    { name: "between real fits the lower residual wins", x: real(26, 0.2), y: real(3, 0.1), sign: 1 },
    {
      name: "between fits that solved nothing the lower residual wins",
      x: none(0.1),
      y: none(0.3),
      sign: -1,
    },
  ])("$name", ({ x, y, sign }) => {
    expect(Math.sign(compareFits(x, y))).toBe(sign);
  });
});
