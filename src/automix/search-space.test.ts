import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { loadRecipe } from "../recipe/index.js";
import { createOptimizer } from "./optimizers/create-optimizer.js";
import { SearchSpace } from "./search-space.js";

const GYOZAMIX = loadRecipe(
  readFileSync(join(import.meta.dirname, "../recipe/examples/gyozamix.yaml"), "utf8"),
  { sourceName: "gyozamix.yaml" },
);

const SD1_SPACE = `
automix: 1
family: sd1
search:
  - step: final
    param: alpha
    blocks:
      - { slots: BASE, fixed: 0.3 }
      - { slots: IN, shared: true }
      - { slots: OUT03..OUT05, range: [0, 0.4] }
  - step: composition
    param: alpha
    range: [0.2, 0.8]
  - step: final
    input: b
    choices: [composition, anime_detail, composition_model]
`;

function errorOf(run: () => unknown): { message: string; path?: string; fix?: string } {
  try {
    run();
  } catch (error) {
    if (isGyozaError(error)) return { message: error.message, path: error.path, fix: error.fix };
    throw error;
  }
  throw new Error("expected a GyozaError");
}

describe("SearchSpace", () => {
  it("turns shared, fixed and ranged slots, a scalar weight and an input choice into coordinates", () => {
    const space = SearchSpace.parse(SD1_SPACE);
    // final.alpha: IN shared (1) + M00 (1) + OUT00..OUT11 (12) = 14; composition.alpha 1; final.b 1.
    expect(space.dimensions).toBe(16);
    expect(space.dimensionList.map((d) => d.label).slice(0, 3)).toEqual([
      "final.alpha.IN00-IN11 (shared)",
      "final.alpha.M00",
      "final.alpha.OUT00",
    ]);
    expect(space.categories).toEqual([...new Array(15).fill(0), 3]);
  });

  it("fills the holes of a base recipe with a point and the result validates (SD 1.x, 26 slots)", () => {
    const space = SearchSpace.parse(SD1_SPACE);
    const x = space.dimensionList.map((_, i) => (i + 1) / (space.dimensions + 1));
    const recipe = space.toRecipe(x, GYOZAMIX);
    const alpha = recipe.steps.final!.alpha as number[];
    expect(alpha).toHaveLength(26);
    expect(alpha[0]).toBe(0.3);
    expect(new Set(alpha.slice(1, 13)).size).toBe(1);
    for (const v of alpha.slice(17, 20)) expect(v >= 0 && v <= 0.4).toBe(true);
    expect(recipe.steps.composition!.alpha).toBeCloseTo(0.2 + 0.6 * (15 / 17), 4);
    expect(recipe.steps.final!.inputs.b).toBe("composition_model");
    // the base recipe is untouched
    expect(GYOZAMIX.steps.final!.alpha).toBe("COSINE");
  });

  it("writes SDXL's 20 slots and the recipe validates", () => {
    const space = SearchSpace.parse(`
automix: 1
family: sdxl
search:
  - { step: final, param: alpha, blocks: [{ slots: OUT, range: [0.5, 1] }] }
`);
    expect(space.dimensions).toBe(20);
    const recipe = space.toRecipe(new Array(20).fill(1), GYOZAMIX);
    const alpha = recipe.steps.final!.alpha as number[];
    expect(alpha).toHaveLength(20);
    expect(alpha.slice(11)).toEqual(new Array(9).fill(1));
    expect(space.describe(new Array(20).fill(0))).toBe(
      `final.alpha: ${[...new Array(11).fill(0), ...new Array(9).fill(0.5)].join(",")}`,
    );
  });

  it("describes a point as supermerger's 26-value text and names the chosen input", () => {
    const space = SearchSpace.parse(SD1_SPACE);
    const text = space.describe(new Array(16).fill(0));
    expect(text).toBe(
      `final.alpha: 0.3,${new Array(25).fill(0).join(",")}; composition.alpha: 0.2; final.b: composition`,
    );
  });

  it("maps the unit interval onto each range and cuts a choice into equal buckets", () => {
    const space = SearchSpace.parse(SD1_SPACE);
    expect(space.value(14, 0)).toBe(0.2);
    expect(space.value(14, 1)).toBe(0.8);
    expect([0, 0.33, 0.34, 0.99, 1].map((u) => space.value(15, u))).toEqual([0, 0, 1, 2, 2]);
  });

  it("drives an optimizer end to end: every candidate becomes a valid recipe", () => {
    const space = SearchSpace.parse(SD1_SPACE);
    const optimizer = createOptimizer("cmaes", space, { seed: 1, budget: 30 });
    for (const candidate of optimizer.ask(30))
      expect(() => space.toRecipe(candidate.x, GYOZAMIX)).not.toThrow();
  });

  it.each([
    [
      "rejects a file without the format version",
      "family: sd1\nsearch: [{ step: a, param: alpha }]",
      "automix",
      /starts with "automix: 1"/,
    ],
    [
      "rejects an unknown field with its path",
      "automix: 1\nfamily: sd1\nsearch: [{ step: a, param: alpha, rnage: [0, 1] }]",
      "search[0]",
      /unknown field "rnage"/,
    ],
    [
      "rejects a slot named by two rules",
      "automix: 1\nfamily: sd1\nsearch: [{ step: a, param: alpha, blocks: [{ slots: IN, shared: true }, { slots: IN04, fixed: 0 }] }]",
      "search[0].blocks[1].slots",
      /IN04 is already chosen by search\[0\]\.blocks\[0\]/,
    ],
    [
      "rejects a block that the family does not have",
      "automix: 1\nfamily: sdxl\nsearch: [{ step: a, param: alpha, blocks: [{ slots: IN11, fixed: 0 }] }]",
      "search[0].blocks[0].slots",
      /"IN11" names no sdxl block/,
    ],
    [
      "rejects a range whose low end is not below its high end",
      "automix: 1\nfamily: sd1\nsearch: [{ step: a, param: alpha, range: [0.5, 0.5] }]",
      "search[0].range",
      /low below high/,
    ],
    [
      "rejects an entry that is both a weight and an input",
      "automix: 1\nfamily: sd1\nsearch: [{ step: a, param: alpha, input: b, choices: [x, y] }]",
      "search[0]",
      /either a weight .* or an input model/,
    ],
    [
      "rejects an input choice with one choice",
      "automix: 1\nfamily: sd1\nsearch: [{ step: a, input: b, choices: [x] }]",
      "search[0].choices",
      /at least two choices/,
    ],
    [
      "rejects a space where everything is fixed",
      "automix: 1\nfamily: sd1\nsearch: [{ step: a, param: alpha, blocks: [{ slots: '*', fixed: 0.5 }] }]",
      "search",
      /nothing is left to search/,
    ],
    [
      "rejects the same weight searched twice",
      "automix: 1\nfamily: sd1\nsearch: [{ step: a, param: alpha }, { step: a, param: alpha, range: [0, 0.5] }]",
      "search[1]",
      /a\.alpha is already searched by search\[0\]/,
    ],
    [
      "rejects a rule that says nothing",
      "automix: 1\nfamily: sd1\nsearch: [{ step: a, param: alpha, blocks: [{ slots: BASE }] }]",
      "search[0].blocks[0]",
      /says nothing/,
    ],
    ["rejects YAML that does not parse", "automix: 1\nfamily: [sd1", "", /not valid YAML/],
  ])("%s", (_name, text, path, message) => {
    const error = errorOf(() => SearchSpace.parse(text, "space.yaml"));
    expect(error.path).toBe(path);
    expect(error.message).toMatch(message);
  });

  it("parses the example in FORMAT.md, so the documentation stays in step with the code", () => {
    const doc = readFileSync(join(import.meta.dirname, "FORMAT.md"), "utf8");
    const example = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const space = SearchSpace.parse(example);
    // final.alpha: IN shared + M00 + 12 OUT = 14; final.beta 1; composition.b 1.
    expect(space.dimensions).toBe(16);
  });

  it("rejects a search space bigger than its limit before parsing it", () => {
    expect(() => SearchSpace.parse(`# ${"x".repeat(200_000)}`)).toThrow(/at most/);
  });

  it("names the hole when the base recipe has no such step or input", () => {
    const missingStep = SearchSpace.parse(
      "automix: 1\nfamily: sd1\nsearch: [{ step: finale, param: alpha }]",
    );
    const error = errorOf(() => missingStep.toRecipe([0.5], GYOZAMIX));
    expect(error).toMatchObject({ path: "search[0].step", message: 'the recipe has no step "finale"' });
    const missingInput = SearchSpace.parse(
      "automix: 1\nfamily: sd1\nsearch: [{ step: final, input: c, choices: [texture, composition] }]",
    );
    expect(errorOf(() => missingInput.toRecipe([0.5], GYOZAMIX)).message).toBe(
      'step "final" has no input "c"',
    );
  });

  it("lets recipe validation reject a filled recipe that cannot merge (a weight outside 0..1 without extrapolate)", () => {
    const space = SearchSpace.parse(
      "automix: 1\nfamily: sd1\nsearch: [{ step: final, param: alpha, range: [0, 2] }]",
    );
    expect(() => space.toRecipe([0.25], GYOZAMIX)).not.toThrow();
    expect(() => space.toRecipe([1], GYOZAMIX)).toThrow(/extrapolat/);
  });
});
