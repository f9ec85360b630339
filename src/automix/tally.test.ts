import { describe, expect, it } from "vitest";
import { combineObjectives, parseTally, softplus, TALLIES, tally } from "./tally.js";

describe("tally", () => {
  it("gives the mean, median and min of plain scores", () => {
    expect(tally([1, 2, 6], "mean")).toBe(3);
    expect(tally([5, 1, 3], "median")).toBe(3);
    expect(tally([4, 1, 3, 2], "median")).toBe(2.5);
    expect(tally([4, -1, 3], "min")).toBe(-1);
  });

  it("takes geometric and harmonic means on the softplus scale", () => {
    const scores = [2, 5, 7];
    const p = scores.map(softplus);
    expect(tally(scores, "geometric")).toBeCloseTo(Math.cbrt(p[0]! * p[1]! * p[2]!), 12);
    expect(tally(scores, "harmonic")).toBeCloseTo(3 / (1 / p[0]! + 1 / p[1]! + 1 / p[2]!), 12);
  });

  it("gives finite, order-keeping geometric and harmonic tallies for negative ImageReward-like scores (autoMBW's broke)", () => {
    const worse = [-2.1, -1.7, -0.4];
    const better = [-1.2, -0.3, 0.8];
    for (const how of ["geometric", "harmonic"] as const) {
      const a = tally(worse, how);
      const b = tally(better, how);
      expect(Number.isFinite(a) && a > 0).toBe(true);
      expect(Number.isFinite(b) && b > 0).toBe(true);
      expect(b).toBeGreaterThan(a);
    }
    // a raw geometric mean is NaN here: what broke autoMBW
    expect(Math.cbrt(worse[0]! * worse[1]! * worse[2]!)).toBeLessThan(0);
    expect(Math.exp(worse.reduce((s, v) => s + Math.log(v), 0) / 3)).toBeNaN();
  });

  it("keeps a candidate's tally independent of other candidates and stable for huge scores", () => {
    expect(softplus(1000)).toBe(1000);
    expect(softplus(-1000)).toBeGreaterThanOrEqual(0);
    expect(tally([1000, 1000], "geometric")).toBeCloseTo(1000, 9);
  });

  it("is NaN for no scores or any non-finite score, whatever the tally", () => {
    for (const how of TALLIES) {
      expect(tally([], how)).toBeNaN();
      expect(tally([1, Number.NaN], how)).toBeNaN();
      expect(tally([1, Number.POSITIVE_INFINITY], how)).toBeNaN();
    }
  });

  it("refuses an unknown tally name with the list", () => {
    expect(() => parseTally("geomean")).toThrow(
      expect.objectContaining({ fix: expect.stringContaining("mean, median, min, geometric, harmonic") }),
    );
  });
});

describe("combineObjectives", () => {
  it("sums weighted objectives; a negative weight minimises", () => {
    expect(
      combineObjectives([
        { name: "a", weight: 2, score: 0.5 },
        { name: "b", weight: -1, score: 0.25 },
      ]),
    ).toBe(0.75);
  });

  it("is NaN when any objective failed, so the trial ranks last", () => {
    expect(combineObjectives([{ name: "a", weight: 1, score: Number.NaN }])).toBeNaN();
    expect(combineObjectives([])).toBeNaN();
  });
});
