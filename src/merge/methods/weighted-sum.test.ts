import { describe, expect, it } from "vitest";
import { runMethod } from "../test-support/run-method.js";
import { weightedSum } from "./weighted-sum.js";

/** The fp32 formula, for rows whose point is the lerp value. */
function fp32Of(a: number, b: number, alpha: number): number {
  return Math.fround(Math.fround(a * Math.fround(1 - alpha)) + Math.fround(b * Math.fround(alpha)));
}

describe("weighted_sum", () => {
  const cases: { name: string; a: number[]; b: number[]; alpha: number; fp32: number[]; lerp: number[] }[] = [
    { name: "α = 0 is A", a: [1, -2.5], b: [7, 9], alpha: 0, fp32: [1, -2.5], lerp: [1, -2.5] },
    { name: "α = 1 is B", a: [1, -2.5], b: [7, 9], alpha: 1, fp32: [7, 9], lerp: [7, 9] },
    // 0.75·1 + 0.25·3 = 1.5; 0.75·2 + 0.25·6 = 3; 0.75·(−4) + 0.25·4 = −2
    {
      name: "α = 0.25 on exact values",
      a: [1, 2, -4],
      b: [3, 6, 4],
      alpha: 0.25,
      fp32: [1.5, 3, -2],
      lerp: [1.5, 3, -2],
    },
    // fp32: f32(1·f32(0.9)) + f32(0·f32(0.1)) = f32(0.9) = 0.89999997615814208984375
    // lerp: fma(f32(0.1), 0 − 1, 1) = 1 − 0.100000001490116 → 0.89999997615814208984375
    {
      name: "α = 0.1 rounds the weights to f32 first",
      a: [1],
      b: [0],
      alpha: 0.1,
      fp32: [0.8999999761581421],
      lerp: [0.8999999761581421],
    },
    // fp32: f32(0.1f·0.7f) + f32(3·0.3f) = 0.07 + 0.9 → 0.9700000286102295
    // lerp: fma(0.3f, f32(3 − 0.1f), 0.1f) → 0.9700000882148743 (one ulp more)
    {
      name: "fp32 and lerp round differently below 0.5",
      a: [0.1],
      b: [3],
      alpha: 0.3,
      fp32: [0.9700000286102295],
      lerp: [0.9700000882148743],
    },
    // fp32: f32(1·0.3f) + f32(1.5·0.7f) → 1.3499999046325684; lerp: fma(0.7f − 1, 1.5 − 1, 1.5) → 1.350000023841858
    {
      name: "fp32 and lerp round differently above 0.5",
      a: [1],
      b: [1.5],
      alpha: 0.7,
      fp32: [1.3499999046325684],
      lerp: [1.350000023841858],
    },
    // torch's CPU lerp rounds the multiply-add once (fmadd), unlike the two roundings written out:
    // unfused a + f32(w·f32(b − a)) = −0.34031200408935547, fused (exact, then one rounding) = −0.3403119742870331
    {
      name: "lerp rounds its multiply-add once below 0.5",
      a: [-0.5240707397460938],
      b: [0.08845844864845276],
      alpha: 0.3,
      fp32: [fp32Of(-0.5240707397460938, 0.08845844864845276, 0.3)],
      lerp: [-0.3403119742870331],
    },
    // unfused b − f32(f32(b − a)·f32(1 − w)) = 0.1803574562072754, fused = 0.1803574413061142
    {
      name: "lerp rounds its multiply-add once above 0.5",
      a: [-0.9736640453338623],
      b: [0.6749381422996521],
      alpha: 0.7,
      fp32: [fp32Of(-0.9736640453338623, 0.6749381422996521, 0.7)],
      lerp: [0.1803574413061142],
    },
  ];
  for (const c of cases) {
    it(`${c.name} (fp32 arithmetic)`, () => {
      expect(runMethod(weightedSum, [c.a, c.b], { alpha: c.alpha })).toEqual(c.fp32);
    });
    it(`${c.name} (lerp arithmetic)`, () => {
      expect(runMethod(weightedSum, [c.a, c.b], { alpha: c.alpha }, { arithmetic: "lerp" })).toEqual(c.lerp);
    });
  }
});
