import { describe, expect, it } from "vitest";
import { loadRecipe } from "./load-recipe.js";
import { rootInput } from "./recipe-dag.js";
import { resolveStepWeights } from "./resolve-step-weights.js";

const UNET = "model.diffusion_model.";
const recipe = loadRecipe(`gyoza: 1
inputs:
  anime: {path: a.safetensors}
  comp: {path: b.safetensors}
  tex: {path: c.safetensors}
steps:
  composition:
    method: weighted_sum
    inputs: {a: anime, b: comp}
    alpha: {preset: REVERSE_COSINE, base: 0.3}
    overrides: [{block: OUT04, pattern: attn2, value: 0.2}]
  final:
    method: triple_sum
    inputs: {a: tex, b: composition, c: anime}
    alpha: COSINE
    params: {beta: 0.1}
  median:
    method: geometric_median
    inputs: {a: final, b: anime, c: comp}
    params: {iterations: 7}
    block_rule: sd-mecha
output: {path: out.safetensors, step: median}
`);

describe("resolveStepWeights", () => {
  const composition = resolveStepWeights(recipe.steps.composition!, "sd1", { path: "steps.composition" });

  it("gives each key its block's alpha, BASE to the text encoder and VAE", () => {
    // REVERSE_COSINE[0] = 0 at IN00 (time_embed under classic), [12] = 0.5 at M00, [24] = 1 at OUT11
    expect(composition(`${UNET}time_embed.0.weight`)).toEqual({ alpha: 0 });
    expect(composition(`${UNET}middle_block.1.proj_in.weight`)).toEqual({ alpha: 0.5 });
    expect(composition(`${UNET}out.0.bias`)).toEqual({ alpha: 1 });
    expect(composition("cond_stage_model.transformer.text_model.final_layer_norm.bias")).toEqual({
      alpha: 0.3,
    });
    expect(composition("first_stage_model.encoder.conv_in.weight")).toEqual({ alpha: 0.3 });
  });

  it("returns null for tensors that are never merged", () => {
    expect(composition("cond_stage_model.transformer.text_model.embeddings.position_ids")).toBeNull();
  });

  it("applies elemental overrides inside their block only", () => {
    const block = `${UNET}output_blocks.4.1.transformer_blocks.0.`;
    expect(composition(`${block}attn2.to_v.weight`)).toEqual({ alpha: 0.2 });
    // REVERSE_COSINE[17] (OUT04) = (1 − cos(17π/24))/2
    expect(composition(`${block}attn1.to_v.weight`)!.alpha).toBeCloseTo(
      (1 - Math.cos((17 * Math.PI) / 24)) / 2,
      14,
    );
  });

  it("fills parameters the step leaves out with the method's defaults", () => {
    const final = resolveStepWeights(recipe.steps.final!, "sd1");
    expect(final(`${UNET}input_blocks.0.0.weight`)).toEqual({ alpha: 1, beta: 0.1 });
    const median = resolveStepWeights(recipe.steps.median!, "sd1");
    expect(median(`${UNET}input_blocks.0.0.weight`)).toEqual({ eps: 1e-6, iterations: 7 });
  });

  it("gives the VAE the named slot's weight under the merge policy", () => {
    const merged = resolveStepWeights(recipe.steps.composition!, "sd1", { vaeSlot: "OUT11" });
    expect(merged("first_stage_model.decoder.conv_out.weight")).toEqual({ alpha: 1 });
    expect(merged("cond_stage_model.transformer.text_model.final_layer_norm.bias")).toEqual({ alpha: 0.3 });
  });

  it("resolves the same recipe for SDXL with the SDXL preset table", () => {
    const sdxl = resolveStepWeights(recipe.steps.composition!, "sdxl");
    // the stored SDXL REVERSE_COSINE row is [BASE 0, IN00 0, 0.146…, 0.5, 0.853…, IN04 1, …, OUT08 0]
    expect(sdxl(`${UNET}input_blocks.4.1.proj_in.weight`)).toEqual({ alpha: 1 });
    expect(sdxl(`${UNET}out.0.weight`)).toEqual({ alpha: 0 });
    expect(sdxl(`${UNET}label_emb.0.0.weight`)).toEqual({ alpha: 0 });
  });
});

describe("rootInput", () => {
  it("follows first inputs through steps back to a file", () => {
    expect(rootInput(recipe, "median", "a")).toBe("tex");
    expect(rootInput(recipe, "final", "b")).toBe("anime");
    expect(rootInput(recipe, "composition", "b")).toBe("comp");
  });
});
