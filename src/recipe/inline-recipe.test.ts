import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { INLINE_STEP, recipeFromInlineArgs } from "./inline-recipe.js";
import { loadRecipe } from "./load-recipe.js";
import { saveRecipe } from "./save-recipe.js";

describe("recipeFromInlineArgs", () => {
  it("turns `merge A B --method weighted_sum --alpha COSINE --base 0.3 -o OUT` into a one-step recipe", () => {
    const recipe = recipeFromInlineArgs({
      a: "a.safetensors",
      b: "b.safetensors",
      method: "weighted_sum",
      alpha: "COSINE",
      base: 0.3,
      output: "out.safetensors",
    });
    expect(recipe.inputs).toEqual({ a: { path: "a.safetensors" }, b: { path: "b.safetensors" } });
    expect(recipe.steps[INLINE_STEP]).toEqual({
      method: "weighted_sum",
      inputs: { a: "a", b: "b" },
      alpha: { preset: "COSINE", base: 0.3 },
      block_rule: "classic",
      arithmetic: "fp32",
    });
    expect(recipe.output).toEqual({
      path: "out.safetensors",
      dtype: "fp16",
      prune: true,
      vae: { policy: "keep-a" },
      metadata: "full",
    });
  });

  it("reads scalars and comma lists as typed, and keeps a scalar's BASE apart", () => {
    const scalar = recipeFromInlineArgs({
      a: "a",
      b: "b",
      method: "weighted_sum",
      alpha: "0.4",
      base: 0,
      output: "o",
    });
    expect(scalar.steps[INLINE_STEP]!.alpha).toEqual({ value: 0.4, base: 0 });
    const list = new Array(26).fill(0.5).join(",");
    const vector = recipeFromInlineArgs({ a: "a", b: "b", method: "weighted_sum", alpha: list, output: "o" });
    expect(vector.steps[INLINE_STEP]!.alpha).toEqual(new Array(26).fill(0.5));
  });

  it("passes three models, beta, lerp arithmetic, other params and the VAE policy through", () => {
    const recipe = recipeFromInlineArgs({
      a: "a",
      b: "b",
      c: "c",
      method: "sum_twice",
      alpha: "0.3",
      beta: "GRAD_V",
      arithmetic: "lerp",
      output: "o.safetensors",
      dtype: "fp32",
      vae: "bake",
      vaeFile: "kl-f8-anime2.ckpt",
    });
    expect(recipe.steps[INLINE_STEP]).toMatchObject({ alpha: 0.3, beta: "GRAD_V", arithmetic: "lerp" });
    expect(recipe.output.vae).toEqual({ policy: "bake", file: "kl-f8-anime2.ckpt" });
    const ties = recipeFromInlineArgs({
      a: "a",
      b: "b",
      c: "c",
      method: "geometric_median",
      params: { iterations: "50" },
      output: "o",
    });
    expect(ties.steps[INLINE_STEP]!.params).toEqual({ iterations: 50 });
  });

  it("saves as a recipe file that loads back to the same recipe", () => {
    const recipe = recipeFromInlineArgs({
      a: "a",
      b: "b",
      method: "weighted_sum",
      alpha: "REVERSE_COSINE",
      base: 0.5,
      output: "o",
    });
    expect(loadRecipe(saveRecipe(recipe))).toEqual(recipe);
  });

  it("rejects an unknown method with did-you-mean", () => {
    try {
      recipeFromInlineArgs({ a: "a", b: "b", method: "weighted-sum", output: "o" });
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "recipe")).toBe(true);
      expect((error as { fix?: string }).fix).toBe('did you mean "weighted_sum"?');
    }
  });

  it("rejects more models than the method takes, and a missing output", () => {
    for (const args of [
      { a: "a", b: "b", c: "c", method: "weighted_sum", output: "o" },
      { a: "a", b: "b", method: "weighted_sum", output: "" },
    ]) {
      try {
        recipeFromInlineArgs(args);
        expect.unreachable();
      } catch (error) {
        expect(isGyozaError(error, "usage")).toBe(true);
      }
    }
  });

  it("rejects a missing model for a three-input method", () => {
    try {
      recipeFromInlineArgs({ a: "a", b: "b", method: "add_difference", output: "o" });
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "usage")).toBe(true);
      expect((error as Error).message).toMatch(/takes 3 models \(a, b, c\), got 2/);
    }
  });
});
