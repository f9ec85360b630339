import { describe, expect, it } from "vitest";
import { readFileProvenance } from "../library/file-provenance.js";
import { automixOriginText, describeAutomixOrigin, readAutomixOrigin } from "./automix-origin.js";

const origin = { study: "demo", trial: 12, score: -0.25, optimizer: "quadratic", seed: 7 };

describe("automix origin (gyoza_automix)", () => {
  it("reads back what it writes, only its five fields", () => {
    const text = automixOriginText({ ...origin, extra: "dropped" } as typeof origin);
    expect(JSON.parse(text)).toEqual(origin);
    expect(readAutomixOrigin(text)).toEqual(origin);
    expect(describeAutomixOrigin(origin)).toBe(
      'from automix study "demo", trial 12, score -0.25 (quadratic, seed 7)',
    );
  });

  it("ignores a record that is not JSON of that shape instead of trusting it", () => {
    for (const bad of [
      "",
      "not json",
      "[1,2]",
      "null",
      JSON.stringify({ ...origin, study: "" }),
      JSON.stringify({ ...origin, study: 5 }),
      JSON.stringify({ ...origin, trial: -1 }),
      JSON.stringify({ ...origin, trial: 1.5 }),
      JSON.stringify({ ...origin, seed: "7" }),
      JSON.stringify({ ...origin, score: "0.5" }),
      JSON.stringify({ ...origin, study: "x".repeat(5000) }),
      JSON.stringify({ ...origin, optimizer: undefined }),
    ])
      expect(readAutomixOrigin(bad), bad.slice(0, 60)).toBeNull();
  });

  it("a file whose metadata has only a gyoza_automix record still says where it came from; a damaged one says nothing", () => {
    expect(readFileProvenance({ gyoza_automix: automixOriginText(origin) })?.automix).toEqual(origin);
    expect(readFileProvenance({ gyoza_automix: "{broken" })).toBeUndefined();
    expect(readFileProvenance({ "modelspec.title": "t" })?.automix).toBeNull();
  });
});
