import { mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRecipe } from "../engine/run-recipe.js";
import { isGyozaError } from "../errors.js";
import { createJsKernel } from "../kernels/index.js";
import { recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { replayMerge } from "./replay-merge.js";

let dir: string;
let cacheDir: string;
let library: string;
let merged: string;
let mergedAutoV3: string;
const kernel = createJsKernel();

/** A two-step recipe over three micro models, merged, then its inputs renamed and moved away. */
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-replay-"));
  cacheDir = join(dir, "cache");
  for (const [name, seed] of [
    ["a", 11],
    ["b", 12],
    ["c", 13],
  ] as const) {
    await writeSyntheticCheckpoint(join(dir, `${name}.safetensors`), {
      layout: "sd1-ldm",
      size: "micro",
      dtype: "F16",
      seed,
    });
  }
  merged = join(dir, "mix.safetensors");
  const recipe = recipeFromData({
    gyoza: 1,
    inputs: {
      detail: { path: join(dir, "a.safetensors") },
      composition: { path: join(dir, "b.safetensors") },
      texture: { path: join(dir, "c.safetensors") },
    },
    steps: {
      base: { method: "weighted_sum", inputs: { a: "detail", b: "composition" }, alpha: "REVERSE_COSINE" },
      final: { method: "weighted_sum", inputs: { a: "texture", b: "base" }, alpha: 0.35, arithmetic: "lerp" },
    },
    output: { path: merged, dtype: "fp16", metadata: "full" },
  });
  const result = await runRecipe(recipe, { kernel, hashCacheDir: cacheDir });
  mergedAutoV3 = result.dataSha256!;
  library = join(dir, "library");
  await mkdir(join(library, "nested"), { recursive: true });
  await rename(join(dir, "a.safetensors"), join(library, "nested", "renamed-detail.safetensors"));
  await rename(join(dir, "b.safetensors"), join(library, "composition-v2.safetensors"));
  await rename(join(dir, "c.safetensors"), join(library, "nested", "tex.safetensors"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("replayMerge", () => {
  it("finds renamed and moved inputs by hash and reproduces the same AutoV3", async () => {
    const result = await replayMerge(merged, {
      searchDirs: [library],
      hashCacheDir: cacheDir,
      kernel,
      workDir: dir,
    });
    expect(result.identical).toBe(true);
    expect(result.actualAutoV3).toBe(mergedAutoV3);
    expect(result.expectedAutoV3).toBe(mergedAutoV3);
    expect(result.recordedAutoV3).toBe(mergedAutoV3);
    expect(result.output).toBeNull();
    const byName = Object.fromEntries(result.inputs.map((input) => [input.name, input]));
    expect(byName.detail).toMatchObject({
      path: join(library, "nested", "renamed-detail.safetensors"),
      recordedPath: join(dir, "a.safetensors"),
      matchedBy: "sha256",
    });
    expect(byName.composition?.path).toBe(join(library, "composition-v2.safetensors"));
    expect(byName.texture?.path).toBe(join(library, "nested", "tex.safetensors"));
    expect((await readdir(dir)).filter((name) => name.includes(".replay-"))).toEqual([]);
  });

  it("keeps the rebuilt file when an output path is given", async () => {
    const output = join(dir, "rebuilt.safetensors");
    const result = await replayMerge(merged, {
      searchDirs: [library],
      hashCacheDir: cacheDir,
      kernel,
      output,
    });
    expect(result).toMatchObject({ identical: true, output });
    expect(await readdir(dir)).toContain("rebuilt.safetensors");
  });

  it("finds a baked VAE by its file name, since recipes record it by path only", async () => {
    const work = join(dir, "vae-work");
    await mkdir(work, { recursive: true });
    const vae = join(work, "kl-f8-anime2.ckpt");
    await writeSyntheticCheckpoint(
      vae,
      { layout: "sd1-ldm", size: "micro", dtype: "F32", seed: 14, vaeOnly: true },
      "ckpt",
    );
    const baked = join(work, "baked.safetensors");
    const inputs = {
      detail: { path: join(library, "nested", "renamed-detail.safetensors") },
      texture: { path: join(library, "nested", "tex.safetensors") },
    };
    const recipe = recipeFromData({
      gyoza: 1,
      inputs,
      steps: { mix: { method: "weighted_sum", inputs: { a: "detail", b: "texture" }, alpha: 0.5 } },
      output: { path: baked, vae: { policy: "bake", file: vae } },
    });
    const { dataSha256 } = await runRecipe(recipe, { kernel, hashCacheDir: cacheDir });
    await mkdir(join(library, "vae"), { recursive: true });
    await rename(vae, join(library, "vae", "kl-f8-anime2.ckpt"));
    const result = await replayMerge(baked, {
      searchDirs: [library],
      hashCacheDir: cacheDir,
      kernel,
      workDir: dir,
    });
    expect(result).toMatchObject({ identical: true, actualAutoV3: dataSha256 });
    expect(result.inputs.find((input) => input.name === "vae")).toEqual({
      name: "vae",
      recordedPath: vae,
      path: join(library, "vae", "kl-f8-anime2.ckpt"),
      matchedBy: "file-name",
    });
  });

  it("refuses to write the rebuilt file over the file it checks", async () => {
    const error = await replayMerge(merged, {
      searchDirs: [library],
      hashCacheDir: cacheDir,
      kernel,
      output: merged,
    }).catch((caught: unknown) => caught);
    expect(isGyozaError(error, "usage")).toBe(true);
    const again = await replayMerge(merged, {
      searchDirs: [library],
      hashCacheDir: cacheDir,
      kernel,
      workDir: dir,
    });
    expect(again.identical).toBe(true);
  });

  it("names the missing input and its hash when no searched file matches", async () => {
    const empty = join(dir, "empty");
    await mkdir(empty, { recursive: true });
    const error = await replayMerge(merged, { searchDirs: [empty], hashCacheDir: cacheDir, kernel }).catch(
      (caught: unknown) => caught,
    );
    expect(isGyozaError(error, "io")).toBe(true);
    expect((error as Error).message).toMatch(
      /input "detail" \(recorded as .*a\.safetensors\): no file with sha256 [0-9a-f]{64}/,
    );
  });

  it("refuses a file that carries no gyoza recipe", async () => {
    const plain = join(library, "composition-v2.safetensors");
    const error = await replayMerge(plain, { searchDirs: [library], hashCacheDir: cacheDir, kernel }).catch(
      (caught: unknown) => caught,
    );
    expect(isGyozaError(error, "recipe")).toBe(true);
    expect((error as Error).message).toMatch(/no gyoza recipe/);
  });
});
