import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { INLINE_LORA_STEP, INLINE_STEP, recipeFromInlineArgs } from "./inline-recipe.js";
import { loadRecipe, recipeFromData } from "./load-recipe.js";
import { loraInputName, parseLoraArgument } from "./lora-argument.js";
import { saveRecipe } from "./save-recipe.js";

const LBW_17 = "1,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1";

function failure(run: () => unknown) {
  try {
    run();
  } catch (error) {
    if (!isGyozaError(error)) throw error;
    return { code: error.code, path: error.path, text: error.describe() };
  }
  throw new Error("accepted");
}

/** A recipe baking `loras` into input `mix`, with any step fields overridden. */
function recipe(loras: unknown, step: Record<string, unknown> = {}, inputs: Record<string, unknown> = {}) {
  return {
    gyoza: 1,
    inputs: { mix: { path: "mix.safetensors" }, detail: { path: "detail.safetensors" }, ...inputs },
    steps: { tuned: { method: "add_lora", inputs: { a: "mix" }, loras, ...step } },
    output: { path: "out.safetensors" },
  };
}

describe("--lora FILE:RATIO[:WEIGHTS]", () => {
  it.each([
    ["detail.safetensors:0.6", { path: "detail.safetensors", ratio: 0.6 }],
    ["detail.safetensors:-.5:OUTALL", { path: "detail.safetensors", ratio: -0.5, weights: "OUTALL" }],
    [`loras/x.safetensors:1:${LBW_17}`, { path: "loras/x.safetensors", ratio: 1, weights: LBW_17 }],
    ["C:\\loras\\x.safetensors:0.6", { path: "C:\\loras\\x.safetensors", ratio: 0.6 }],
    ["C:\\loras\\x.safetensors:0.6:ALL", { path: "C:\\loras\\x.safetensors", ratio: 0.6, weights: "ALL" }],
  ])("reads %s", (text, expected) => {
    expect(parseLoraArgument(text)).toEqual(expected);
  });

  it("refuses a file without a ratio", () => {
    expect(failure(() => parseLoraArgument("detail.safetensors")).text).toContain(
      '"detail.safetensors" has no ratio',
    );
  });

  it.each(["detail.safetensors:abc", "detail.safetensors:abc:OUTALL", "detail.safetensors:0,6"])(
    "refuses %s: a ratio that is not a number",
    (text) => {
      const { code, text: message } = failure(() => parseLoraArgument(text));
      expect(code).toBe("usage");
      expect(message).toContain("is not a number");
      expect(message).toContain("fix: write FILE:RATIO[:WEIGHTS]");
    },
  );

  it("refuses 17 block weights with a trailing comma before any file is opened", () => {
    expect(failure(() => parseLoraArgument(`d.safetensors:0.6:${LBW_17},`)).text).toContain(
      "block weight 18 is empty (after OUT11)\nfix: remove the trailing comma",
    );
  });

  it("names LoRA inputs after their files, as valid and distinct recipe names", () => {
    expect(loraInputName("loras/detail-tweaker.safetensors", new Set())).toBe("detail-tweaker");
    expect(loraInputName("1girl v2.safetensors", new Set())).toBe("lora_1girl_v2");
    expect(loraInputName("a/x.safetensors", new Set(["x"]))).toBe("x_2");
  });
});

describe("recipes with LoRAs", () => {
  it("bake the LoRAs into one model given alone on the command line, in one add_lora step", () => {
    const made = recipeFromInlineArgs({
      a: "mix.safetensors",
      method: "weighted_sum",
      output: "out.safetensors",
      loras: ["detail.safetensors:0.6:OUTALL", "style.safetensors:0.3"],
    });
    expect(made.inputs).toEqual({
      a: { path: "mix.safetensors" },
      detail: { path: "detail.safetensors" },
      style: { path: "style.safetensors" },
    });
    expect(made.steps[INLINE_LORA_STEP]).toMatchObject({
      method: "add_lora",
      inputs: { a: "a" },
      loras: [
        { input: "detail", ratio: 0.6, weights: "OUTALL" },
        { input: "style", ratio: 0.3 },
      ],
    });
    expect(made.output.step).toBe(INLINE_LORA_STEP);
  });

  it("bake the LoRAs in after the merge when two models are given", () => {
    const made = recipeFromInlineArgs({
      a: "a.safetensors",
      b: "b.safetensors",
      method: "weighted_sum",
      alpha: "COSINE",
      output: "out.safetensors",
      loras: ["detail.safetensors:0.6"],
    });
    expect(made.steps[INLINE_LORA_STEP]!.inputs).toEqual({ a: INLINE_STEP });
    expect(made.output.step).toBe(INLINE_LORA_STEP);
  });

  it("refuse merge flags with one model and --lora: there is nothing to merge", () => {
    const args = { a: "m", method: "weighted_sum", alpha: "0.5", output: "o", loras: ["d:0.5"] };
    expect(failure(() => recipeFromInlineArgs(args)).text).toContain("there is nothing to merge");
  });

  it("load back the same after saving", () => {
    const loaded = recipeFromData(recipe([{ input: "detail", ratio: 0.6, weights: LBW_17 }]));
    expect(loadRecipe(saveRecipe(loaded))).toEqual(loaded);
  });

  it("refuse a ratio that is not a number, at its path", () => {
    const { path, text } = failure(() => recipeFromData(recipe([{ input: "detail", ratio: "0.6" }])));
    expect(path).toBe("steps.tuned.loras[0].ratio");
    expect(text).toContain('expected a number, got "0.6"');
  });

  it("refuse 17 block weights with a trailing comma, naming the field and the slot before it", () => {
    const { path, text } = failure(() =>
      recipeFromData(recipe([{ input: "detail", ratio: 0.6, weights: `${LBW_17},` }])),
    );
    expect(path).toBe("steps.tuned.loras[0].weights");
    expect(text).toContain("block weight 18 is empty (after OUT11)");
  });

  it("refuse a word in a list of block weights", () => {
    const weights = [1, 0, 0, 0, 0, 0, 0, 0, "x", 1, 1, 1, 1, 1, 1, 1, 1];
    expect(failure(() => recipeFromData(recipe([{ input: "detail", ratio: 0.6, weights }]))).path).toBe(
      "steps.tuned.loras[0].weights[8]",
    );
  });

  it("refuse an unknown LoRA input with a suggestion, and a step given as a LoRA", () => {
    expect(failure(() => recipeFromData(recipe([{ input: "detial", ratio: 1 }]))).text).toContain(
      'did you mean "detail"?',
    );
    expect(failure(() => recipeFromData(recipe([{ input: "tuned", ratio: 1 }]))).text).toContain(
      '"tuned" is a step',
    );
  });

  it("refuse add_lora without LoRAs, and LoRAs on a method that bakes none", () => {
    expect(failure(() => recipeFromData(recipe([]))).text).toContain("add_lora needs at least one LoRA");
    const merged = recipe(
      [{ input: "detail", ratio: 1 }],
      { method: "weighted_sum", inputs: { a: "mix", b: "other" } },
      {
        other: { path: "other.safetensors" },
      },
    );
    expect(failure(() => recipeFromData(merged)).text).toContain("weighted_sum bakes no LoRAs");
  });

  it("refuse a LoRA input that a step also merges as a model", () => {
    const data = recipe([{ input: "detail", ratio: 1 }]);
    (data.steps as Record<string, unknown>).mixed = {
      method: "weighted_sum",
      inputs: { a: "tuned", b: "detail" },
      alpha: 0.5,
    };
    const { path, text } = failure(() =>
      recipeFromData({ ...data, output: { path: "o.safetensors", step: "mixed" } }),
    );
    expect(path).toBe("steps.mixed.inputs.b");
    expect(text).toContain('input "detail" is baked in as a LoRA');
  });

  it("suggest the field meant for a misspelt LoRA field", () => {
    expect(
      failure(() => recipeFromData(recipe([{ input: "detail", ratio: 1, weigths: "ALL" }]))).text,
    ).toContain('did you mean "weights"?');
  });
});
