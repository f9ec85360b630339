import { describe, expect, it } from "vitest";
import { runMethod } from "../test-support/run-method.js";
import { cosineA, cosineB } from "./cosine-merge.js";
import { similarityRange } from "./cosine-similarity.js";
import { geometricMedian } from "./geometric-median.js";
import { modelStock } from "./model-stock.js";
import { slerp } from "./slerp.js";
import { ties, trimToTopK } from "./ties.js";

// A = [[1, 1], [0, 1]], B = [[1, −1], [0, −1]]: column 0 agrees (cos 1), column 1 is opposite (cos −1).
const A = [1, 1, 0, 1];
const B = [1, -1, 0, -1];
const range = { sim_min: -1, sim_max: 1 };

describe("cosine_a", () => {
  it.each([
    // normalised columns: whole-tensor cosine = (1 − 1)/2 = 0, so combined = [0.5, −0.5] → k = [0.75, 0.25]
    // out = B(1 − k) + A·k: column 1 = −0.75 + 0.25 = −0.5
    { alpha: 0, out: [1, -0.5, 0, -0.5] },
    // k = [0.75, 0.25] − 0.25 = [0.5, 0]: column 1 is pure B
    { alpha: 0.25, out: [1, -1, 0, -1] },
    // cosineA subtracts |α|
    { alpha: -0.25, out: [1, -1, 0, -1] },
  ])("keeps A where the columns agree (α = $alpha)", ({ alpha, out }) => {
    expect(runMethod(cosineA, [A, B], { alpha, ...range }, { shape: [2, 2] })).toEqual(out);
  });

  it("keeps A's VAE untouched, as supermerger does", () => {
    const key = "first_stage_model.decoder.conv_out.weight";
    expect(runMethod(cosineA, [A, B], range, { shape: [2, 2], key })).toEqual(A);
  });
});

describe("cosine_b", () => {
  it.each([
    // raw columns: whole cosine = (1 − 1 − 1)/3 = −1/3; combined = [1/3, −2/3] → k = [2/3, 1/6] (f32)
    // column 1: f32(−1·f32(1 − 0.1666666716337204)) + 0.1666666716337204 = −0.6666666269302368
    { alpha: 0, out: [1, -0.6666666269302368, 0, -0.6666666269302368] },
    // cosineB subtracts α itself, so a negative α raises k: [2/3 + 1/3 → 1, 1/6 + 1/3 = 0.5]
    { alpha: -1 / 3, out: [1, 0, 0, 0] },
  ])("weights A by the normalised similarity (α = $alpha)", ({ alpha, out }) => {
    const result = runMethod(cosineB, [A, B], { alpha, ...range }, { shape: [2, 2] });
    result.forEach((value, i) => {
      expect(value).toBeCloseTo(out[i]!, 7);
    });
  });

  it("treats a 1-D tensor as one column", () => {
    // cos([1, 0], [1, 1]) = 1/√2 → k = f32(0.7071067811865476) = 0.7071067690849304
    // out[0] = f32(1·f32(1 − k)) + f32(1·k) = 1; out[1] = f32(1 − k) = 0.2928932309150696
    expect(
      runMethod(
        cosineB,
        [
          [1, 0],
          [1, 1],
        ],
        { sim_min: 0, sim_max: 1 },
        { shape: [2] },
      ),
    ).toEqual([1, 0.2928932309150696]);
  });
});

describe("similarityRange", () => {
  it("drops NaN and the values outside the 1st–99th percentiles before taking min and max", () => {
    // 0..100: p1 (midpoint) = 1, p99 = 99 → 0 and 100 are dropped
    const values = Float64Array.from({ length: 101 }, (_, i) => i);
    expect(similarityRange([values, Float64Array.of(Number.NaN)])).toEqual({ min: 1, max: 99 });
  });
});

describe("ties", () => {
  it("trims to the top-k magnitudes, keeping the lowest index on ties", () => {
    // k = 0.5 of 4 → 2 kept: |2| and the first |1| (index 0)
    expect([...trimToTopK(Float32Array.of(-1, 1, 2, 1), 0.5)]).toEqual([-1, 0, 2, 0]);
  });

  it("trims like a sort-based reference on data full of ties", () => {
    const values = Float32Array.from(
      { length: 5000 },
      (_, i) => [0, -0.5, 0.5, 1.25, -1.25, 3, -0][(i * 7919) % 7]! * ((i % 3) + 1),
    );
    for (const k of [0.01, 0.2, 0.5, 0.77, 0.99]) {
      const keep = Math.floor(k * values.length);
      const threshold = [...values].map(Math.abs).sort((x, y) => y - x)[keep - 1]!;
      let equalSlots = keep - values.filter((v) => Math.abs(v) > threshold).length;
      const expected = Array.from(values, (v) =>
        Math.abs(v) > threshold || (Math.abs(v) === threshold && equalSlots-- > 0) ? v : 0,
      );
      expect([...trimToTopK(values, k)], `k = ${k}`).toEqual(expected);
    }
  });

  it.each([
    // trimmed (k = 0.75): a = [3, −2, 1, 0], b = [−1, −4, 2, 0]; signs of the sum [2, −6, 3, 0] → [+, −, +, +]
    // disjoint means: 3, (−2 − 4)/2 = −3, (1 + 2)/2 = 1.5, nothing → 0; × α = 0.5
    { k: 0.75, alpha: 0.5, out: [1.5, -1.5, 0.75, 0] },
    // k = 1 keeps everything: signs of [2, −6, 3, 0.5]; means 3, −3, 1.5, 0.5
    { k: 1, alpha: 1, out: [3, -3, 1.5, 0.5] },
  ])("elects a sign and averages the agreeing values (k = $k)", ({ k, alpha, out }) => {
    expect(
      runMethod(
        ties,
        [
          [3, -2, 1, 0],
          [-1, -4, 2, 0.5],
        ],
        { k, alpha },
      ),
    ).toEqual(out);
  });
});

describe("slerp", () => {
  it.each([
    // θ = π/2: weights sin(π/4)/sin(π/2) = 0.7071067811865476 → f32 0.7071067690849304
    { a: [1, 0], b: [0, 1], alpha: 0.5, out: [0.7071067690849304, 0.7071067690849304] },
    // t = 0: weights sin(θ)/sin(θ) = 1 and 0
    { a: [1, 0], b: [0, 1], alpha: 0, out: [1, 0] },
    // parallel tensors fall back to the linear blend: 0.5·[1, 2] + 0.5·[2, 4]
    { a: [1, 2], b: [2, 4], alpha: 0.5, out: [1.5, 3] },
  ])("interpolates along the arc (α = $alpha)", ({ a, b, alpha, out }) => {
    expect(runMethod(slerp, [a, b], { alpha })).toEqual(out);
  });
});

describe("geometric_median", () => {
  it.each([
    // 1-D: the median of 0, 1 and 10 is the middle value 1
    { points: [[0], [1], [10]], out: [1] },
    // two models agree, the outlier is ignored
    {
      points: [
        [0, 0],
        [0, 0],
        [100, 100],
      ],
      out: [0, 0],
    },
    // identical models: the median is that model
    {
      points: [
        [0.5, -2],
        [0.5, -2],
        [0.5, -2],
      ],
      out: [0.5, -2],
    },
  ])("finds the point closest to all models ($out)", ({ points, out }) => {
    const result = runMethod(geometricMedian, points, { iterations: 500 });
    result.forEach((value, i) => {
      expect(value).toBeCloseTo(out[i]!, 4);
    });
  });
});

describe("model_stock", () => {
  it.each([
    // orthogonal deltas: cos θ = 0 → t = 0 → the base
    { base: [0, 0], a: [1, 0], b: [0, 1], out: [0, 0] },
    // identical deltas: cos θ = 1 → t = 2/2 = 1 → their average
    { base: [0, 0], a: [1, 1], b: [1, 1], out: [1, 1] },
    // deltas (2, 0) and (1, 1): cos θ = 2/(2·√2) = 0.70710678, t = 1.41421356/1.70710678 = 0.82842712
    // avg = [1.5, 0.5] → t·avg = [1.24264069, 0.41421356]
    { base: [0, 0], a: [2, 0], b: [1, 1], out: [1.24264069, 0.41421356] },
    // the same, shifted by a base of 1: out = t·(avg) + (1 − t)·1 = [2.5·t + 1 − t, 1.5·t + 1 − t]
    { base: [1, 1], a: [3, 1], b: [2, 2], out: [2.24264069, Math.SQRT2] }, // 1 + (√2 − 1) = √2
  ])("pulls the average toward the base by the angle between the deltas ($out)", ({ base, a, b, out }) => {
    const result = runMethod(modelStock, [base, a, b]);
    result.forEach((value, i) => {
      expect(value).toBeCloseTo(out[i]!, 6);
    });
  });
});

describe("the cosine prepass", () => {
  it("measures the merged keys but not the VAE, and turns the measurements into the similarity range", () => {
    const prepass = cosineB.prepass!;
    expect(prepass.includes("model.diffusion_model.input_blocks.1.1.proj_in.weight")).toBe(true);
    expect(prepass.includes("first_stage_model.decoder.conv_out.weight")).toBe(false);
    expect(prepass.includes("cond_stage_model.transformer.text_model.embeddings.position_ids")).toBe(false);
    const context = { key: "k", arithmetic: "fp32" as const, seed: 0, elementOffset: 0, shape: [2, 2] };
    const measured = prepass.measure([Float32Array.from(A), Float32Array.from(B)], context);
    // the combined similarities of the example above: [1/3, −2/3]
    expect([...measured].map((v) => Number(v.toFixed(12)))).toEqual([0.333333333333, -0.666666666667]);
    // 101 evenly spaced values: the 1st and 99th percentiles (midpoint) are 0.01 and 0.99
    const spread = Float64Array.from({ length: 101 }, (_, i) => i / 100);
    expect(prepass.finish([spread])).toEqual({ sim_min: 0.01, sim_max: 0.99 });
  });
});

describe("similarityRange on tiny inputs", () => {
  it("falls back to the plain extremes when trimming would leave nothing", () => {
    expect(similarityRange([Float64Array.of(0.2, 0.8)])).toEqual({ min: 0.2, max: 0.8 });
  });
});
