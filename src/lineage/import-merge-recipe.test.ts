import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRecipe } from "../engine/run-recipe.js";
import { isGyozaError } from "../errors.js";
import { createJsKernel } from "../kernels/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { importMergeRecipe } from "./import-merge-recipe.js";
import { HashIndex } from "./search-by-hash.js";

const sha = (digit: string) => digit.repeat(64);
const SD1_26 = Array.from({ length: 26 }, (_, i) => Number((i / 25).toFixed(2)));

function a1111(recipe: Record<string, unknown>, names: Record<string, string> = {}) {
  return {
    sd_merge_recipe: JSON.stringify({
      type: "webui",
      primary_model_hash: sha("1"),
      secondary_model_hash: sha("2"),
      tertiary_model_hash: null,
      interp_method: "Weighted sum",
      multiplier: 0.3,
      save_as_half: true,
      custom_name: "",
      config_source: 0,
      bake_in_vae: "None",
      discard_weights: "",
      is_inpainting: false,
      is_instruct_pix2pix: false,
      ...recipe,
    }),
    sd_merge_models: JSON.stringify(
      Object.fromEntries(
        Object.entries(names).map(([hash, name]) => [
          hash,
          { name, legacy_hash: "01234567", sd_merge_recipe: null },
        ]),
      ),
    ),
  };
}

function supermerger(recipe: Record<string, unknown>) {
  return {
    sd_merge_recipe: JSON.stringify({
      type: "sd-webui-supermerger",
      weights_alpha: null,
      weights_beta: null,
      model_a: sha("a"),
      model_b: sha("b"),
      model_c: sha("c"),
      base_alpha: 0.25,
      base_beta: 0.5,
      mode: "Weight sum",
      mbw: false,
      elemental_merge: "",
      calcmode: "normal",
      ...recipe,
    }),
  };
}

describe("importMergeRecipe from A1111", () => {
  it("turns a weighted sum into a weighted_sum step with the inputs' sha256 and recorded names", () => {
    const { tool, recipe, notCarried } = importMergeRecipe(
      a1111(
        { custom_name: "myMix" },
        { [sha("1")]: "anything-v3.safetensors [abcdef0123]", [sha("2")]: "waifu.ckpt" },
      ),
    );
    expect(tool).toBe("a1111");
    expect(recipe!.inputs).toEqual({
      a: { path: "anything-v3.safetensors", sha256: sha("1") },
      b: { path: "waifu.ckpt", sha256: sha("2") },
    });
    expect(recipe!.steps.merge).toMatchObject({
      method: "weighted_sum",
      inputs: { a: "a", b: "b" },
      alpha: 0.3,
    });
    expect(recipe!.steps.merge!.arithmetic).toBe("fp32");
    expect(recipe!.output).toMatchObject({
      path: "myMix.safetensors",
      title: "myMix",
      dtype: "fp16",
      prune: false,
      vae: { policy: "merge", slot: "BASE" },
    });
    expect(notCarried).toEqual([expect.objectContaining({ field: "interp_method", changesResult: false })]);
  });

  it("maps add difference to add_difference over three inputs and bakes a named VAE", () => {
    const { recipe, notCarried } = importMergeRecipe(
      a1111({
        interp_method: "Add difference",
        multiplier: 1,
        tertiary_model_hash: sha("3"),
        bake_in_vae: "kl-f8-anime2.ckpt",
        discard_weights: "model_ema",
      }),
    );
    expect(recipe!.steps.merge).toMatchObject({
      method: "add_difference",
      inputs: { a: "a", b: "b", c: "c" },
      alpha: 1,
    });
    expect(recipe!.inputs.c).toEqual({ path: `${sha("3").slice(0, 10)}.safetensors`, sha256: sha("3") });
    expect(recipe!.output).toMatchObject({ prune: true, vae: { policy: "bake", file: "kl-f8-anime2.ckpt" } });
    expect(notCarried.map((entry) => entry.field)).toContain("bake_in_vae");
  });

  it("lists what it cannot carry over, marking what changes the result", () => {
    const { recipe, notCarried } = importMergeRecipe(
      a1111({ save_as_half: false, discard_weights: "^cond_stage_model\\.", is_inpainting: true }),
    );
    expect(recipe!.output.dtype).toBe("fp32");
    const byField = Object.fromEntries(notCarried.map((entry) => [entry.field, entry.changesResult]));
    expect(byField).toEqual({
      interp_method: false,
      discard_weights: true,
      save_as_half: false,
      is_inpainting: true,
    });
  });

  it("gives no recipe for No interpolation, saying why", () => {
    const { recipe, notCarried } = importMergeRecipe(a1111({ interp_method: "No interpolation" }));
    expect(recipe).toBeNull();
    expect(notCarried[0]).toMatchObject({ field: "interp_method", changesResult: true });
    expect(notCarried[0]!.reason).toMatch(/gyoza convert/);
  });
});

describe("importMergeRecipe from supermerger", () => {
  it("imports a block-weighted weight sum as weighted_sum with torch.lerp arithmetic and 26 weights", () => {
    const { tool, recipe, notCarried } = importMergeRecipe(
      supermerger({ mbw: true, weights_alpha: SD1_26.join(","), model_c: null }),
    );
    expect(tool).toBe("supermerger");
    expect(recipe!.steps.merge).toMatchObject({ method: "weighted_sum", arithmetic: "lerp", alpha: SD1_26 });
    expect(Object.keys(recipe!.inputs)).toEqual(["a", "b"]);
    expect(notCarried.map((entry) => [entry.field, entry.changesResult])).toEqual([["save_as_half", false]]);
  });

  it.each([
    [{ mode: "Add difference:A+(B-C)*alpha" }, "add_difference", ["alpha"]],
    [{ mode: "Add difference", calcmode: "trainDifference" }, "train_difference", ["alpha"]],
    [{ mode: "Triple sum:A*(1-alpha-beta)+B*alpha+C*beta" }, "triple_sum", ["alpha", "beta"]],
    [{ mode: "sum Twice" }, "sum_twice", ["alpha", "beta"]],
    [{ calcmode: "cosineA" }, "cosine_a", ["alpha"]],
  ])("maps %o to %s", (fields, method, params) => {
    const { recipe } = importMergeRecipe(supermerger(fields));
    const step = recipe!.steps.merge!;
    expect(step.method).toBe(method);
    expect(params.map((param) => (step as unknown as Record<string, unknown>)[param])).toEqual(
      params.map((param) => (param === "alpha" ? 0.25 : 0.5)),
    );
  });

  it("carries elemental rules over as overrides and reports the ones it cannot read", () => {
    const { recipe, notCarried } = importMergeRecipe(
      supermerger({ elemental_merge: "OUT04:attn2:0.2\nNOT IN00 IN01::0.9,garbage, :NOT attn proj:0.1" }),
    );
    expect(recipe!.steps.merge!.overrides).toEqual([
      { block: "OUT04", pattern: "attn2", value: 0.2 },
      { block: "NOT IN00 IN01", pattern: "", value: 0.9 },
      { block: "*", pattern: "NOT attn proj", value: 0.1 },
    ]);
    expect(notCarried).toContainEqual(
      expect.objectContaining({ field: "elemental_merge", changesResult: true }),
    );
  });

  it("gives no recipe for a calcmode gyoza lacks, and flags exclusion lists", () => {
    expect(importMergeRecipe(supermerger({ calcmode: "smoothAdd" })).recipe).toBeNull();
    const { notCarried } = importMergeRecipe(supermerger({ exclude: ["IN00"] }));
    expect(notCarried).toContainEqual(expect.objectContaining({ field: "exclude", changesResult: true }));
  });
});

describe("importMergeRecipe inputs", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "gyoza-import-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("points inputs at searched files found by sha256, so the imported recipe runs", async () => {
    const paths = [join(dir, "first.safetensors"), join(dir, "second.safetensors")];
    for (const [index, path] of paths.entries()) {
      await writeSyntheticCheckpoint(path, {
        layout: "sd1-ldm",
        size: "micro",
        dtype: "F16",
        seed: 50 + index,
      });
    }
    const index = await HashIndex.build([dir], { cacheDir: false });
    const [first, second] = paths.map(
      (path) => index.files.find((file) => file.path === path)!.hashes.sha256!,
    );
    const { recipe } = importMergeRecipe(
      supermerger({ model_a: first!.toLowerCase(), model_b: second!.toLowerCase(), model_c: null }),
      { index, outputPath: join(dir, "out.safetensors") },
    );
    expect(recipe!.inputs.a!.path).toBe(paths[0]);
    expect(recipe!.inputs.b!.path).toBe(paths[1]);
    const result = await runRecipe(recipe!, { kernel: createJsKernel() });
    expect(result.dataSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("gives a gyoza merge's own recipe back, filling paths that metadata: hashes withheld", () => {
    const embedded = {
      gyoza: 1,
      inputs: { a: { sha256: sha("1") }, b: { path: "/models/b.safetensors", autov3: sha("2") } },
      steps: { mix: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: "COSINE" } },
      output: { path: "out.safetensors", metadata: "hashes" },
    };
    const { tool, recipe, notCarried } = importMergeRecipe({ gyoza_recipe: JSON.stringify(embedded) });
    expect(tool).toBe("gyoza");
    expect(recipe!.inputs).toEqual({
      a: { path: "a.safetensors", sha256: sha("1") },
      b: { path: "/models/b.safetensors", autov3: sha("2") },
    });
    expect(recipe!.steps.mix!.alpha).toBe("COSINE");
    expect(notCarried).toEqual([expect.objectContaining({ field: "inputs.a.path", changesResult: false })]);
  });

  it("refuses a file that records no merge", () => {
    const error = (() => {
      try {
        importMergeRecipe({ "modelspec.title": "plain" }, { file: "plain.safetensors" });
      } catch (caught) {
        return caught;
      }
    })();
    expect(isGyozaError(error, "recipe")).toBe(true);
    expect((error as Error).message).toMatch(/records no merge recipe/);
  });
});
