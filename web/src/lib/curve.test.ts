import { describe, expect, it } from "vitest";
import { exactPreset, nearestPreset, round3, shortSlot, uDepth, weightString } from "./curve";

const SD1 = [
  "BASE",
  ...Array.from({ length: 12 }, (_, i) => `IN${String(i).padStart(2, "0")}`),
  "M00",
  ...Array.from({ length: 12 }, (_, i) => `OUT${String(i).padStart(2, "0")}`),
];

describe("curve editor helpers", () => {
  it("lays the blocks over a U: down blocks descend, the middle is lowest, up blocks ascend", () => {
    const depths = SD1.map((_, i) => uDepth(SD1, i));
    const ins = depths.slice(1, 13);
    const outs = depths.slice(14);
    for (let i = 1; i < ins.length; i++) expect(ins[i]!).toBeGreaterThan(ins[i - 1]!);
    for (let i = 1; i < outs.length; i++) expect(outs[i]!).toBeLessThan(outs[i - 1]!);
    expect(depths[13]).toBe(1);
    expect(Math.max(...depths.filter((_, i) => i !== 13))).toBeLessThan(1);
  });

  it("writes the weight string without a trailing comma, rounded to 3 decimals", () => {
    const text = weightString([0, 1 / 3, 0.5, 2 / 3, 1]);
    expect(text).toBe("0,0.333,0.5,0.667,1");
    expect(text.endsWith(",")).toBe(false);
    expect(round3(0.12349)).toBe(0.123);
  });

  it("finds the nearest preset by L2 distance among presets of the same length only", () => {
    const presets = [
      { name: "FLAT_25", weights: Array(26).fill(0.25) },
      { name: "FLAT_75", weights: Array(26).fill(0.75) },
      { name: "SDXL_ONLY", weights: Array(20).fill(0.3) },
    ];
    const near = nearestPreset(Array(26).fill(0.3), presets)!;
    expect(near.name).toBe("FLAT_25");
    expect(near.distance).toBeCloseTo(Math.sqrt(26 * 0.05 ** 2), 9);
    expect(exactPreset(Array(26).fill(0.75), presets)).toBe("FLAT_75");
    expect(exactPreset(Array(26).fill(0.3), presets)).toBeUndefined();
    expect(nearestPreset(Array(7).fill(0.3), presets)).toBeUndefined();
  });

  it("labels slots compactly", () => {
    expect(["BASE", "IN04", "M00", "OUT11"].map(shortSlot)).toEqual(["B", "4", "M", "11"]);
  });
});
