import { describe, expect, it } from "vitest";
import { runMethod } from "../test-support/run-method.js";
import { addDelta } from "./add-delta.js";
import { addDifference } from "./add-difference.js";
import { subtract } from "./subtract.js";
import { sumTwice } from "./sum-twice.js";
import { trainDifference } from "./train-difference.js";
import { tripleSum } from "./triple-sum.js";

describe("add_difference", () => {
  it.each([
    // 1 + 0.5·(3 − 2) = 1.5; 0.5 + 0.5·(2 − 4) = −0.5
    { a: [1, 0.5], b: [3, 2], c: [2, 4], alpha: 0.5, out: [1.5, -0.5] },
    // α = 0 leaves A
    { a: [1, 0.5], b: [3, 2], c: [2, 4], alpha: 0, out: [1, 0.5] },
    // 1 + f32(0.1)·(1 − 0) = 1 + 0.100000001490116 → f32 1.100000023841858
    { a: [1], b: [1], c: [0], alpha: 0.1, out: [1.100000023841858] },
  ])("A + α(B − C) with α = $alpha", ({ a, b, c, alpha, out }) => {
    expect(runMethod(addDifference, [a, b, c], { alpha })).toEqual(out);
  });
});

describe("triple_sum", () => {
  it.each([
    // 0.5·1 + 0.25·2 + 0.25·4 = 2
    { a: [1], b: [2], c: [4], alpha: 0.25, beta: 0.25, out: [2] },
    // 0.25·4 + 0.5·0 + 0.25·8 = 3; 0.25·(−2) + 0.5·2 + 0.25·0 = 0.5
    { a: [4, -2], b: [0, 2], c: [8, 0], alpha: 0.5, beta: 0.25, out: [3, 0.5] },
  ])("(1 − α − β)A + αB + βC with α = $alpha, β = $beta", ({ a, b, c, alpha, beta, out }) => {
    expect(runMethod(tripleSum, [a, b, c], { alpha, beta })).toEqual(out);
  });
});

describe("sum_twice", () => {
  it.each([
    // ((1 + 3)/2 + 5)/2 = 3.5
    { alpha: 0.5, beta: 0.5, out: [3.5] },
    // 0.75·1 + 0.25·3 = 1.5; 0.25·1.5 + 0.75·5 = 4.125
    { alpha: 0.25, beta: 0.75, out: [4.125] },
    // β = 0 is the first weighted sum alone: 0.5·1 + 0.5·3 = 2
    { alpha: 0.5, beta: 0, out: [2] },
  ])("(1 − β)((1 − α)A + αB) + βC with α = $alpha, β = $beta", ({ alpha, beta, out }) => {
    expect(runMethod(sumTwice, [[1], [3], [5]], { alpha, beta })).toEqual(out);
  });
});

describe("train_difference", () => {
  it.each([
    // diff = 3 − 2 = 1, |B − A| = 2, scale = 2/(1 + 2) → f32 0.6666666865348816, strength = f32(1.8) = 1.7999999523162842
    // 1 + f32(0.6666666865348816·1.7999999523162842) = 2.200000047683716
    {
      name: "scales B − C by |B − A| / (|B − C| + |B − A|)",
      a: [1],
      b: [3],
      c: [2],
      alpha: 1,
      out: [2.200000047683716],
    },
    // diff = −1, scale = 1/(1 + 1) = 0.5 signed −: 0 + f32(−0.5·1.7999999523162842) = −0.8999999761581421
    { name: "keeps the sign of B − C", a: [0], b: [-1], c: [0], alpha: 1, out: [-0.8999999761581421] },
    // B = C: nothing to add
    { name: "adds nothing where B equals C", a: [0.25, -3], b: [2, 5], c: [2, 5], alpha: 1, out: [0.25, -3] },
    // A = B: |B − A| = 0 so the scale is 0
    { name: "adds nothing where A already equals B", a: [2], b: [2], c: [7], alpha: 1, out: [2] },
  ])("$name", ({ a, b, c, alpha, out }) => {
    expect(runMethod(trainDifference, [a, b, c], { alpha })).toEqual(out);
  });
});

describe("subtract and add_delta", () => {
  it("subtract gives A − B", () => {
    // 3 − 1 = 2; −1 − 0.5 = −1.5
    expect(
      runMethod(subtract, [
        [3, -1],
        [1, 0.5],
      ]),
    ).toEqual([2, -1.5]);
  });
  it("add_delta gives A + αD", () => {
    // 1 + 0.5·2 = 2; −1 + 0.5·(−1.5) = −1.75
    expect(
      runMethod(
        addDelta,
        [
          [1, -1],
          [2, -1.5],
        ],
        { alpha: 0.5 },
      ),
    ).toEqual([2, -1.75]);
  });
});
