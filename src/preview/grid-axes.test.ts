import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { GenerationParams } from "../backends/types.js";
import { builtinPresets, resolveWeights } from "../merge/index.js";
import { loadRecipe, type Recipe } from "../recipe/index.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { type AxisContext, applyPicks, checkDistinctAxes, parseGridAxis } from "./grid-axes.js";

const RECIPE = `gyoza: 1
inputs:
  a: { path: a.safetensors, sha256: "${"a".repeat(64)}" }
  b: { path: b.safetensors }
  c: { path: c.safetensors }
steps:
  composition:
    method: weighted_sum
    inputs: { a: a, b: b }
    alpha: REVERSE_COSINE
  final:
    method: weighted_sum
    inputs: { a: c, b: composition }
    alpha: 0.5
output: { step: final, path: out.safetensors }
`;

function context(family: "sd1" | "sdxl" = "sd1"): AxisContext {
  return { recipe: loadRecipe(RECIPE), outputStep: "final", family, cwd: "/work" };
}

const PARAMS: GenerationParams = {
  prompt: "1girl",
  negativePrompt: "",
  seed: 1,
  steps: 20,
  cfg: 7,
  sampler: "Euler a",
  scheduler: "Automatic",
  width: 512,
  height: 512,
  clipSkip: 1,
};

function cell(recipe: Recipe, ...axes: [ReturnType<typeof parseGridAxis>, number][]) {
  return applyPicks(
    recipe,
    PARAMS,
    axes.map(([axis, index]) => ({ axis, index })),
    { outputStep: "final", family: "sd1" },
  );
}

let dir = "";
useTempDirWithHashCache("gyoza-grid-axes-", (path) => {
  dir = path;
});

describe("grid axes", () => {
  it("sets the output step's alpha and labels each value in the user's terms", () => {
    const axis = parseGridAxis("x", "alpha=0.2,0.4", context());
    expect(axis.target).toEqual({ kind: "weight", step: "final", param: "alpha" });
    expect(axis.labels).toEqual(["alpha = 0.2", "alpha = 0.4"]);
    const { recipe } = cell(context().recipe, [axis, 1]);
    expect(recipe.steps.final!.alpha).toBe(0.4);
    expect(recipe.steps.composition!.alpha).toBe("REVERSE_COSINE");
  });

  it("expands ranges with both ends and no floating-point noise", () => {
    expect(parseGridAxis("x", "alpha=0:1:0.25", context()).values).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(parseGridAxis("x", "alpha=0:0.3:0.1", context()).values).toEqual([0, 0.1, 0.2, 0.3]);
    expect(parseGridAxis("y", "seed=1:3", context()).values).toEqual([1, 2, 3]);
  });

  it("sets one block of a step whose alpha is a preset, keeping the other blocks", () => {
    const axis = parseGridAxis("x", "composition.OUT03=0,0.2", context());
    expect(axis.labels).toEqual(["composition.OUT03 = 0", "composition.OUT03 = 0.2"]);
    const { recipe } = cell(context().recipe, [axis, 1]);
    const before = resolveWeights("REVERSE_COSINE", "sd1");
    const after = resolveWeights(recipe.steps.composition!.alpha!, "sd1");
    expect(after.OUT03).toBe(0.2);
    for (const slot of Object.keys(before)) if (slot !== "OUT03") expect(after[slot]).toBe(before[slot]);
  });

  it("sets a block of a scalar alpha as a 26-value vector (sd1) or 21 values (sdxl)", () => {
    const sd1 = cell(context().recipe, [parseGridAxis("x", "OUT03=0.9", context()), 0]).recipe;
    expect(sd1.steps.final!.alpha).toHaveLength(26);
    expect(resolveWeights(sd1.steps.final!.alpha!, "sd1").OUT03).toBe(0.9);
    expect(resolveWeights(sd1.steps.final!.alpha!, "sd1").OUT02).toBe(0.5);
    const xl = parseGridAxis("x", "OUT08=0.1", context("sdxl"));
    const sdxl = applyPicks(context("sdxl").recipe, PARAMS, [{ axis: xl, index: 0 }], {
      outputStep: "final",
      family: "sdxl",
    }).recipe;
    expect(sdxl.steps.final!.alpha).toHaveLength(21);
    expect(resolveWeights(sdxl.steps.final!.alpha!, "sdxl").OUT08).toBe(0.1);
  });

  it("refuses a block SDXL does not have, naming the axis and the block", () => {
    expect(() => parseGridAxis("y", "OUT11=0.2", context("sdxl"))).toThrow(/--y: sdxl has no block OUT11/);
  });

  it("refuses a weight outside 0..1 unless the step may extrapolate, naming the axis and the value", () => {
    expect(() => parseGridAxis("x", "OUT03=0,1.5", context())).toThrow(
      /--x: OUT03 = 1.5: alpha is outside 0\.\.1/,
    );
    const data = loadRecipe(RECIPE.replace("alpha: 0.5", "alpha: 0.5\n    extrapolate: true"));
    expect(parseGridAxis("x", "OUT03=0,1.5", { ...context(), recipe: data }).values).toEqual([0, 1.5]);
  });

  it("sets a preset as the step's alpha and labels it alpha = NAME", () => {
    const axis = parseGridAxis("x", "preset=cosine,REVERSE_COSINE", context());
    expect(axis.labels).toEqual(["alpha = COSINE", "alpha = REVERSE_COSINE"]);
    expect(cell(context().recipe, [axis, 0]).recipe.steps.final!.alpha).toBe("COSINE");
    expect(builtinPresets.get("sd1")!.has("COSINE")).toBe(true);
    expect(() => parseGridAxis("x", "preset=COSINEE", context())).toThrow(/--x: preset = COSINEE/);
  });

  it("changes a step's method, and refuses a method the recipe's inputs do not fit", () => {
    const axis = parseGridAxis("x", "final.method=weighted_sum,slerp", context());
    expect(cell(context().recipe, [axis, 1]).recipe.steps.final!.method).toBe("slerp");
    expect(() => parseGridAxis("x", "final.method=add_difference", context())).toThrow(
      /--x: final.method = add_difference/,
    );
    expect(() => parseGridAxis("x", "final.method=no_such_method", context())).toThrow(/no_such_method/);
  });

  it("swaps an input model, dropping the old file's hashes, labelled by file name", () => {
    const axis = parseGridAxis("y", "input.a=other.safetensors,/m/third.safetensors", context());
    expect(axis.labels).toEqual(["input.a = other.safetensors", "input.a = third.safetensors"]);
    const { recipe } = cell(context().recipe, [axis, 0]);
    expect(recipe.inputs.a).toEqual({ path: "/work/other.safetensors" });
    expect(() => parseGridAxis("y", "input.d=x.safetensors", context())).toThrow(/no input "d"/);
  });

  it("names an unknown step or parameter with a suggestion", () => {
    expect(() => parseGridAxis("x", "finall.alpha=0.1", context())).toThrow(
      /no step "finall" \(did you mean "final"\?\)/,
    );
    expect(() => parseGridAxis("x", "sed=1,2", context())).toThrow(
      /unknown parameter "sed" \(did you mean "seed"\?\)/,
    );
    expect(() => parseGridAxis("x", "seed", context())).toThrow(/not PARAMETER=VALUES/);
  });

  it("applies generation values to the settings, not the recipe", () => {
    const seed = parseGridAxis("x", "seed=1,2,3", context());
    const clip = parseGridAxis("y", "clip_skip=1,2", context());
    const size = parseGridAxis("z", "size=512x768", context());
    const { recipe, params } = cell(context().recipe, [seed, 2], [clip, 1], [size, 0]);
    expect(recipe).toEqual(context().recipe);
    expect(params).toMatchObject({ seed: 3, clipSkip: 2, width: 512, height: 768 });
    expect(seed.labels).toEqual(["seed = 1", "seed = 2", "seed = 3"]);
  });

  it("splits prompts on | (they contain commas) and reads @file one per line", () => {
    const prompts = parseGridAxis("y", "prompt=1girl, smile|landscape, night", context());
    expect(prompts.values).toEqual(["1girl, smile", "landscape, night"]);
    writeFileSync(join(dir, "prompts.txt"), "# comment\nfirst, prompt\n\nsecond\n");
    expect(parseGridAxis("y", "prompt=@prompts.txt", { ...context(), cwd: dir }).values).toEqual([
      "first, prompt",
      "second",
    ]);
  });

  it("refuses bad generation values with the axis and value", () => {
    expect(() => parseGridAxis("x", "seed=1,-2", context())).toThrow(
      /--x: seed = -2: a seed is a whole number/,
    );
    expect(() => parseGridAxis("x", "clip_skip=0", context())).toThrow(
      /clip skip is a whole number from 1 to 12/,
    );
    expect(() => parseGridAxis("x", "size=500x500", context())).toThrow(/multiple of 8/);
    expect(() => parseGridAxis("x", "cfg=abc", context())).toThrow(/--x: cfg = abc/);
  });

  it("refuses an empty value, a repeated value, too many values and two axes over one parameter", () => {
    expect(() => parseGridAxis("x", "seed=1,,2", context())).toThrow(/empty value/);
    expect(() => parseGridAxis("x", "seed=1,1", context())).toThrow(/seed = 1 is listed twice/);
    expect(() => parseGridAxis("x", "seed=0:1000", context())).toThrow(/at most 100/);
    const a = parseGridAxis("x", "seed=1,2", context());
    const b = parseGridAxis("y", "seed=3,4", context());
    expect(() => checkDistinctAxes([a, b])).toThrow(/--y: seed is already the x axis/);
  });

  it("applies a preset before a block on another axis, so the block wins", () => {
    const preset = parseGridAxis("x", "preset=COSINE", context());
    const block = parseGridAxis("y", "OUT03=0.123", context());
    const { recipe } = cell(context().recipe, [block, 0], [preset, 0]);
    const weights = resolveWeights(recipe.steps.final!.alpha!, "sd1");
    expect(weights.OUT03).toBe(0.123);
    expect(weights.IN00).toBe(resolveWeights("COSINE", "sd1").IN00);
  });
});
