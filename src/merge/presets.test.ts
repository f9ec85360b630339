import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { FIXTURE_DIRS } from "../test-support/fixture-dirs.js";
import { builtinPresets, findPreset, translateSd1ToSdxl } from "./presets.js";

function json(name: string): Record<string, number[]> {
  return JSON.parse(readFileSync(new URL(`./presets/${name}`, import.meta.url), "utf8"));
}

describe("presets", () => {
  it("match the COSINE and REVERSE_COSINE formulas of DOMAIN.md to 1e-15", () => {
    const cosine = findPreset("COSINE", "sd1").unet;
    const reverse = findPreset("REVERSE_COSINE", "sd1").unet;
    for (let i = 0; i < 25; i++) {
      expect(Math.abs(cosine[i]! - (1 + Math.cos((Math.PI * i) / 24)) / 2)).toBeLessThan(1e-15);
      expect(Math.abs(reverse[i]! - (1 - Math.cos((Math.PI * i) / 24)) / 2)).toBeLessThan(1e-15);
    }
  });

  it("agree between the 25-value table and the 26-value BASE-first table", () => {
    const plain = json("mbw-presets-sd1-25.json");
    const baseFirst = json("mbw-presets-sd1-26-base-first.json");
    expect(Object.keys(plain)).toEqual(Object.keys(baseFirst));
    for (const [name, values] of Object.entries(plain)) expect(baseFirst[name]!.slice(1)).toEqual(values);
  });

  it("are the same data as the reference presets", () => {
    for (const name of [
      "mbw-presets-sd1-25.json",
      "mbw-presets-sd1-26-base-first.json",
      "mbw-presets-sdxl-20-base-first.json",
    ]) {
      const reference = `${FIXTURE_DIRS.reference}presets/${name}`;
      expect(json(name)).toEqual(JSON.parse(readFileSync(reference, "utf8")));
    }
  });

  it("give BASE 0 except ALL_B", () => {
    for (const preset of builtinPresets.get("sd1")!.values())
      expect(preset.base).toBe(preset.name === "ALL_B" ? 1 : 0);
  });

  it("use the SDXL table where it has the preset and translate the SD1 one otherwise", () => {
    const sdxlCosine = findPreset("COSINE", "sdxl");
    expect(sdxlCosine.translated).toBe(false);
    expect(sdxlCosine.unet).toHaveLength(19);
    const allB = findPreset("ALL_B", "sdxl");
    expect(allB.translated).toBe(true);
    expect(allB.unet).toEqual(new Array(19).fill(1));
  });

  it("translate SD1 to SDXL as w[0:9] + w[12:22]", () => {
    const w = Array.from({ length: 25 }, (_, i) => i);
    // IN00–IN08 = 0..8, M00 = 12, OUT00–OUT08 = 13..21
    expect(translateSd1ToSdxl(w)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    ]);
  });

  it("are found case-insensitively and suggest the closest name for a typo", () => {
    expect(findPreset("reverse_cosine", "sd1").name).toBe("REVERSE_COSINE");
    try {
      findPreset("COSNE", "sd1");
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "unknown-id")).toBe(true);
      expect((error as { fix?: string }).fix).toBe('did you mean "COSINE"?');
    }
  });
});
