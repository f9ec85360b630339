import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { parseWeightText } from "./weight-text.js";
import { resolveWeights } from "./weights.js";

const COSINE_25 =
  "1,0.99,0.96,0.92,0.85,0.78,0.69,0.6,0.5,0.4,0.31,0.22,0.15,0.08,0.04,0.01,0,0.01,0.04,0.08,0.15,0.22,0.31,0.4,0.5";

function failure(text: string, where = "--alpha") {
  try {
    parseWeightText(text, { where });
  } catch (error) {
    if (!isGyozaError(error)) throw error;
    return { code: error.code, text: error.describe() };
  }
  throw new Error(`"${text}" was accepted`);
}

describe("parseWeightText", () => {
  it("reads a number, a preset name and 25 or 26 comma-separated values", () => {
    expect(parseWeightText("0.3")).toBe(0.3);
    expect(parseWeightText(" -.5 ")).toBe(-0.5);
    expect(parseWeightText("COSINE")).toBe("COSINE");
    expect(parseWeightText(COSINE_25)).toHaveLength(25);
    expect(parseWeightText(`0.2, ${COSINE_25}`)).toEqual([0.2, ...COSINE_25.split(",").map(Number)]);
  });

  it("refuses 25 values with a trailing comma instead of reading them as 26, BASE first", () => {
    const { code, text } = failure(`${COSINE_25},`);
    expect(code).toBe("usage");
    expect(text).toBe("--alpha: field 26 is empty (after OUT11)\nfix: remove the trailing comma");
  });

  it("refuses a leading comma and names the first block", () => {
    expect(failure(`,${COSINE_25}`).text).toContain("field 1 is empty (before IN00)");
  });

  it("refuses an empty field in the middle and names the block before it", () => {
    const fields = COSINE_25.split(",");
    fields.splice(5, 0, "");
    expect(failure(fields.join(",")).text).toContain("field 6 is empty (after IN04)");
  });

  it("refuses a token that is not a number, naming its position and the block it would set", () => {
    const fields = COSINE_25.split(",");
    fields[12] = "O.5";
    expect(failure(fields.join(",")).text).toContain('field 13 "O.5" is not a number (it would set M00)');
  });

  it.each(["0x10", "1e", "Infinity", "NaN", "1_0", "0.5.5"])("refuses %s as a block weight", (token) => {
    const fields = COSINE_25.split(",");
    fields[0] = token;
    expect(failure(fields.join(",")).code).toBe("usage");
  });

  it.each([2, 24, 27])("refuses %i comma-separated values, naming the counts that exist", (count) => {
    const { text } = failure(new Array(count).fill("0.5").join(","));
    expect(text).toContain(`has ${count} values`);
    expect(text).toContain("25 values (IN00..OUT11) or 26 (BASE first)");
  });

  it("suggests commas for space-separated values", () => {
    const { text } = failure("1 0.5 0");
    expect(text).toContain("3 space-separated numbers");
    expect(text).toContain('"1,0.5,0"');
  });

  it("refuses a number with junk after it instead of taking it for a preset name", () => {
    expect(failure("0.5x").text).toContain('"0.5x" is not a number');
  });
});

describe("the comma form inside a recipe", () => {
  it('resolves alpha: "1,0.9,…" like the same numbers as a list', () => {
    const fromText = resolveWeights(`0.3,${COSINE_25}`, "sd1");
    const fromList = resolveWeights([0.3, ...COSINE_25.split(",").map(Number)], "sd1");
    expect(fromText).toEqual(fromList);
    expect(fromText.BASE).toBe(0.3);
    expect(fromText.OUT11).toBe(0.5);
  });

  it("refuses a trailing comma there too, with the recipe path", () => {
    expect(() => resolveWeights(`${COSINE_25},`, "sd1", { path: "steps.final.alpha" })).toThrow(
      /field 26 is empty \(after OUT11\)/,
    );
    try {
      resolveWeights(`${COSINE_25},`, "sd1", { path: "steps.final.alpha" });
    } catch (error) {
      expect(isGyozaError(error, "recipe") && error.path).toBe("steps.final.alpha");
    }
  });
});
