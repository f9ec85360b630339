import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { elementalRemainder } from "./elemental.js";
import { unetSlotsOf } from "./slots.js";
import { curveValues } from "./weight-curves.js";
import { alphaForKey, keyWeights, parseWeightArgument, resolveWeights } from "./weights.js";

const unet = (family: "sd1" | "sdxl") => unetSlotsOf(family);
const UNET = "model.diffusion_model.";

function expectRecipeError(run: () => unknown, path: string, message?: RegExp): void {
  try {
    run();
    expect.unreachable();
  } catch (error) {
    expect(isGyozaError(error, "recipe")).toBe(true);
    expect((error as { path?: string }).path).toBe(path);
    if (message) expect((error as Error).message).toMatch(message);
  }
}

describe("resolveWeights", () => {
  it("spreads a scalar over every slot, BASE included", () => {
    const weights = resolveWeights(0.3, "sd1");
    expect(Object.keys(weights)).toHaveLength(26);
    expect(new Set(Object.values(weights))).toEqual(new Set([0.3]));
  });

  it("lets --base override BASE only", () => {
    const weights = resolveWeights(0.3, "sd1", { base: 0.7 });
    expect(weights.BASE).toBe(0.7);
    expect(weights.IN05).toBe(0.3);
  });

  it("reads a 25-value vector as IN00..OUT11 with BASE 0, and a 26-value one as BASE first", () => {
    const w = Array.from({ length: 25 }, (_, i) => i / 100);
    const plain = resolveWeights(w, "sd1");
    expect(plain.BASE).toBe(0);
    expect(plain.IN00).toBe(0);
    expect(plain.M00).toBe(0.12);
    expect(plain.OUT11).toBe(0.24);
    const baseFirst = resolveWeights([0.9, ...w], "sd1");
    expect(baseFirst.BASE).toBe(0.9);
    expect(baseFirst.OUT11).toBe(0.24);
  });

  it("resolves a preset by name with its BASE, and {preset, base} with another BASE", () => {
    const cosine = resolveWeights("COSINE", "sd1");
    expect(cosine.BASE).toBe(0);
    expect(cosine.IN00).toBe(1);
    expect(cosine.M00).toBe(0.5);
    expect(cosine.OUT11).toBe(0);
    expect(resolveWeights({ preset: "COSINE", base: 0.3 }, "sd1").BASE).toBe(0.3);
    expect(resolveWeights("ALL_B", "sd1").BASE).toBe(1);
  });

  it("translates an SD1 vector for SDXL and gives the VAE slot BASE's value", () => {
    const w = Array.from({ length: 25 }, (_, i) => i);
    const weights = resolveWeights([0.5, ...w], "sdxl");
    expect(unet("sdxl").map((slot) => weights[slot])).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    ]);
    expect(weights.BASE).toBe(0.5);
    expect(weights.VAE).toBe(0.5);
  });

  it("reads a 21-value SDXL vector as BASE, 19 UNet values, VAE", () => {
    const w = [0.1, ...new Array(19).fill(0.5), 0.9];
    const weights = resolveWeights(w, "sdxl");
    expect(weights.BASE).toBe(0.1);
    expect(weights.OUT08).toBe(0.5);
    expect(weights.VAE).toBe(0.9);
  });

  it("evaluates curves with parameters", () => {
    const cosine = resolveWeights({ curve: "cosine" }, "sd1");
    // (1 + cos(π·12/24))/2 = 0.5 at M00
    expect(cosine.M00).toBeCloseTo(0.5, 15);
    const scaled = resolveWeights({ curve: "linear", min: 0.2, max: 0.6, base: 1 }, "sd1");
    expect(scaled.IN00).toBe(0.2);
    // 0.2 + 0.4·(12/24) = 0.4
    expect(scaled.M00).toBeCloseTo(0.4, 15);
    expect(scaled.OUT11).toBeCloseTo(0.6, 15);
    expect(scaled.BASE).toBe(1);
  });

  it("computes the cosine and smoothstep curves exactly as the preset table within 1e-15", () => {
    const cosine = resolveWeights("COSINE", "sd1");
    const smooth = resolveWeights("SMOOTHSTEP", "sd1");
    const cosineCurve = curveValues("cosine", 25);
    const smoothCurve = curveValues("smoothstep", 25);
    unet("sd1").forEach((slot, i) => {
      expect(Math.abs(cosine[slot]! - cosineCurve[i]!)).toBeLessThan(1e-15);
      expect(Math.abs(smooth[slot]! - smoothCurve[i]!)).toBeLessThan(1e-14);
    });
  });

  it("rejects a vector of the wrong length with its path", () => {
    expectRecipeError(
      () => resolveWeights([0, 1, 2], "sd1", { path: "steps.mix.alpha" }),
      "steps.mix.alpha",
      /got 3/,
    );
  });

  it("rejects a non-finite value with the index of the element", () => {
    const w = new Array(25).fill(0.5);
    w[3] = Number.NaN;
    expectRecipeError(
      () => resolveWeights(w, "sd1", { path: "steps.texture.params.alpha" }),
      "steps.texture.params.alpha[3]",
    );
  });

  it("rejects a misspelt field of a weight object with did-you-mean", () => {
    try {
      resolveWeights({ curve: "cosine", mx: 0.9 } as never, "sd1", { path: "steps.mix.alpha" });
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "recipe")).toBe(true);
      expect((error as { path?: string }).path).toBe("steps.mix.alpha.mx");
      expect((error as { fix?: string }).fix).toBe('did you mean "max"?');
    }
  });

  it("rejects a weight object naming two forms, or a non-finite base", () => {
    expectRecipeError(
      () => resolveWeights({ preset: "COSINE", value: 1 } as never, "sd1"),
      "alpha",
      /not several/,
    );
    expectRecipeError(() => resolveWeights({ preset: "COSINE", base: Number.NaN }, "sd1"), "alpha.base");
  });

  it("rejects an unknown preset with did-you-mean", () => {
    try {
      resolveWeights("REVERSE_COSINES", "sd1", { path: "steps.mix.alpha" });
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "recipe")).toBe(true);
      expect((error as { fix?: string }).fix).toBe('did you mean "REVERSE_COSINE"?');
    }
  });
});

describe("keyWeights", () => {
  const weights = resolveWeights([0.9, ...Array.from({ length: 25 }, (_, i) => i / 100)], "sd1");

  it("gives each key its block's weight and null for tensors that are not merged", () => {
    const w = keyWeights(weights, "sd1");
    expect(w.weightForKey(`${UNET}input_blocks.4.1.proj_in.weight`)).toBe(0.04);
    expect(w.weightForKey(`${UNET}time_embed.0.weight`)).toBe(0);
    expect(w.weightForKey(`${UNET}out.2.bias`)).toBe(0.24);
    expect(w.weightForKey("cond_stage_model.transformer.text_model.final_layer_norm.weight")).toBe(0.9);
    expect(w.weightForKey("first_stage_model.decoder.conv_in.weight")).toBe(0.9);
    expect(w.weightForKey("cond_stage_model.transformer.text_model.embeddings.position_ids")).toBeNull();
  });

  it("applies an elemental override only to matching keys of its block", () => {
    const w = keyWeights(weights, "sd1", "classic", [{ block: "OUT04", pattern: "attn2", value: 0.2 }]);
    const block = `${UNET}output_blocks.4.1.transformer_blocks.0.`;
    expect(w.weightForKey(`${block}attn2.to_k.weight`)).toBe(0.2);
    expect(w.weightForKey(`${block}attn1.to_k.weight`)).toBe(0.17);
    expect(w.weightForKey(`${UNET}output_blocks.5.1.transformer_blocks.0.attn2.to_k.weight`)).toBe(0.18);
  });

  it("lets later overrides win, takes ranges, globs and * blocks", () => {
    const w = keyWeights(weights, "sd1", "classic", [
      { block: "*", pattern: "", value: 1 },
      { block: "IN04-IN06", pattern: "*.attn?.to_q.weight", value: 0.5 },
    ]);
    expect(w.weightForKey(`${UNET}input_blocks.5.1.transformer_blocks.0.attn1.to_q.weight`)).toBe(0.5);
    expect(w.weightForKey(`${UNET}input_blocks.5.1.transformer_blocks.0.attn1.to_k.weight`)).toBe(1);
    expect(w.weightForKey(`${UNET}input_blocks.7.1.transformer_blocks.0.attn1.to_q.weight`)).toBe(1);
  });

  it("matches patterns after the block prefix, so a digit does not match the block number", () => {
    expect(elementalRemainder(`${UNET}input_blocks.1.1.proj_in.weight`)).toBe("1.proj_in.weight");
    const w = keyWeights(weights, "sd1", "classic", [{ block: "IN01", pattern: "0", value: 0.5 }]);
    expect(w.weightForKey(`${UNET}input_blocks.1.1.proj_in.weight`)).toBe(0.01);
    expect(w.weightForKey(`${UNET}input_blocks.1.0.in_layers.0.weight`)).toBe(0.5);
  });

  it("reads supermerger's space-separated blocks and patterns and NOT, as in its elemental examples", () => {
    const t = `1.transformer_blocks.0.`;
    const key = (block: string, rest: string) => `${UNET}${block}.${t}${rest}`;
    // "OUT03 OUT04 OUT05:attn2 attn1.to_out:0.5"
    const several = keyWeights(weights, "sd1", "classic", [
      { block: "OUT03 OUT04 OUT05", pattern: "attn2 attn1.to_out", value: 0.5 },
    ]);
    expect(several.weightForKey(key("output_blocks.3", "attn2.to_q.weight"))).toBe(0.5);
    expect(several.weightForKey(key("output_blocks.5", "attn1.to_out.0.bias"))).toBe(0.5);
    expect(several.weightForKey(key("output_blocks.5", "attn1.to_q.weight"))).toBe(0.18);
    // "NOT OUT04:attn:1": attn of every block except OUT04
    const notBlock = keyWeights(weights, "sd1", "classic", [
      { block: "NOT OUT04", pattern: "attn", value: 1 },
    ]);
    expect(notBlock.weightForKey(key("output_blocks.4", "attn1.to_q.weight"))).toBe(0.17);
    expect(notBlock.weightForKey(key("output_blocks.5", "attn1.to_q.weight"))).toBe(1);
    // "OUT05:NOT attn proj:0.2": everything of OUT05 except attn and proj
    const notPattern = keyWeights(weights, "sd1", "classic", [
      { block: "OUT05", pattern: "NOT attn proj", value: 0.2 },
    ]);
    expect(notPattern.weightForKey(key("output_blocks.5", "norm1.weight"))).toBe(0.2);
    expect(notPattern.weightForKey(key("output_blocks.5", "attn2.to_k.weight"))).toBe(0.18);
    expect(notPattern.weightForKey(key("output_blocks.5", "ff.net.0.proj.weight"))).toBe(0.18);
  });

  it("rejects an override for a block the family does not have", () => {
    expectRecipeError(
      () =>
        keyWeights(resolveWeights(0.5, "sdxl"), "sdxl", "classic", [
          { block: "OUT11", pattern: "", value: 0 },
        ]),
      "overrides[0].block",
    );
  });
});

describe("parseWeightArgument", () => {
  it.each([
    { text: "0.3", spec: 0.3 },
    { text: "COSINE", spec: "COSINE" },
    { text: ` ${"0, 0.5,".repeat(12)}1`, spec: [...new Array(12).fill([0, 0.5]).flat(), 1] },
  ])("reads $text", ({ text, spec }) => {
    expect(parseWeightArgument(text)).toEqual(spec);
  });
});

describe("resolveWeights with an explicit BASE", () => {
  it("gives a scalar or a vector another BASE through {value, base} and {values, base}", () => {
    const scalar = resolveWeights({ value: 0.3, base: 0.8 }, "sd1");
    expect(scalar.BASE).toBe(0.8);
    expect(scalar.OUT03).toBe(0.3);
    const vector = resolveWeights({ values: new Array(25).fill(0.4), base: 0.6 }, "sd1");
    expect(vector.BASE).toBe(0.6);
    expect(vector.IN11).toBe(0.4);
  });
});

describe("alphaForKey", () => {
  it("answers per key for a preset with --base and an override", () => {
    const alpha = alphaForKey("COSINE", "sd1", {
      base: 0.3,
      overrides: [{ block: "OUT04", pattern: "attn2", value: 0.2 }],
    });
    expect(alpha(`${UNET}input_blocks.0.0.weight`)).toBe(1);
    expect(alpha(`${UNET}middle_block.1.proj_in.weight`)).toBe(0.5);
    expect(alpha(`${UNET}output_blocks.4.1.transformer_blocks.0.attn2.to_q.weight`)).toBe(0.2);
    expect(alpha("cond_stage_model.transformer.text_model.final_layer_norm.weight")).toBe(0.3);
    expect(alpha("cond_stage_model.transformer.text_model.embeddings.position_ids")).toBeNull();
  });
});
