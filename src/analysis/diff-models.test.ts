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
import { diffModels, type ModelDiff } from "./diff-models.js";
import { diffPlotPng, diffPlotSvg } from "./diff-plot.js";

let dir: string;
let kernel: MergeKernel;
const path = (name: string) => join(dir, name);

async function diff(a: string, b: string, perKey = false): Promise<ModelDiff> {
  const [x, y] = await Promise.all([openCheckpoint(path(a)), openCheckpoint(path(b))]);
  try {
    return await diffModels(x!, y!, { kernel, perKey });
  } finally {
    await Promise.all([x!.close(), y!.close()]);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-diff-"));
  kernel = await loadKernel();
  await writeSyntheticCheckpoint(path("a.safetensors"), {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F16",
    seed: 1,
  });
  await writeSyntheticCheckpoint(
    path("a.ckpt"),
    { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: 1 },
    "ckpt",
  );
  await writeSyntheticCheckpoint(path("b.safetensors"), {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F16",
    seed: 2,
  });
  // IN00..IN11 from A, the rest from B: the diff against A must show exactly that split
  const alpha = [0, ...new Array(12).fill(0), ...new Array(13).fill(1)];
  await runRecipe(
    recipeFromData({
      gyoza: 1,
      inputs: { a: { path: path("a.safetensors") }, b: { path: path("b.safetensors") } },
      steps: { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha } },
      output: { path: path("m32.safetensors"), dtype: "fp32", metadata: "none" },
    }),
    { kernel },
  );
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("diffModels", { timeout: 60_000 }, () => {
  it("finds a model identical to itself across ckpt and safetensors", async () => {
    const result = await diff("a.safetensors", "a.ckpt");
    expect(result.total).toMatchObject({ cosine: 1, relativeL2: 0, identical: 1 });
    expect(result.blocks.map((block) => block.name)).toHaveLength(26);
    expect(result.components.map((c) => c.name)).toEqual(["unet", "text_encoder", "vae"]);
  });

  it("shows which blocks a merge took from each parent, across fp16 and fp32", async () => {
    const result = await diff("a.safetensors", "m32.safetensors");
    const byName = new Map(result.blocks.map((block) => [block.name, block]));
    for (const slot of ["BASE", "IN00", "IN05", "IN11"])
      expect(byName.get(slot)).toMatchObject({ identical: 1, relativeL2: 0 });
    for (const slot of ["M00", "OUT00", "OUT11"]) {
      expect(byName.get(slot)!.identical).toBe(0);
      expect(byName.get(slot)!.relativeL2).toBeGreaterThan(0.5);
    }
    const vae = result.components.find((c) => c.name === "vae")!;
    expect(vae.identical).toBe(1);
  });

  it("reports per-key statistics when asked", async () => {
    const result = await diff("a.safetensors", "b.safetensors", true);
    expect(result.keys!.length).toBe(result.total.keys);
    expect(result.keys!.every((key) => key.cosine < 0.99)).toBe(true);
  });

  it("draws an SVG with one bar per block and component, and renders it as PNG", async () => {
    const result = await diff("a.safetensors", "m32.safetensors");
    const svg = diffPlotSvg(result, "a vs m32");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/<rect /g)!.length).toBe(1 + result.blocks.length + result.components.length + 1);
    const png = await diffPlotPng(svg);
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
  });
});
