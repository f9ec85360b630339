import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type GyozaError, isGyozaError } from "../errors.js";
import { loadRecipe, MAX_RECIPE_BYTES } from "./load-recipe.js";
import { topologicalSteps } from "./recipe-dag.js";
import { saveRecipe } from "./save-recipe.js";

const gyozamix = readFileSync(new URL("./examples/gyozamix.yaml", import.meta.url), "utf8");

function failure(text: string): GyozaError {
  try {
    loadRecipe(text, { sourceName: "test.yaml" });
  } catch (error) {
    if (isGyozaError(error)) return error;
    throw error;
  }
  throw new Error("expected the recipe to be rejected");
}

const base = (steps: string, output = "output: {path: out.safetensors}") => `gyoza: 1
inputs:
  anime: {path: a.safetensors}
  comp: {path: b.safetensors}
  tex: {path: c.safetensors}
steps:
${steps}
${output}
`;

describe("loadRecipe", () => {
  it("loads the GyozaMix example with its defaults filled in", () => {
    const recipe = loadRecipe(gyozamix, { sourceName: "gyozamix.yaml" });
    expect(Object.keys(recipe.steps)).toEqual(["composition", "final"]);
    expect(recipe.steps.composition!.alpha).toBe("REVERSE_COSINE");
    expect(recipe.steps.final!.inputs).toEqual({ a: "texture", b: "composition" });
    expect(recipe.steps.final!.block_rule).toBe("classic");
    expect(recipe.steps.final!.arithmetic).toBe("fp32");
    expect(recipe.output).toMatchObject({
      dtype: "fp16",
      prune: true,
      vae: { policy: "bake", file: "vae/kl-f8-anime2.ckpt" },
    });
    expect(topologicalSteps(recipe)).toEqual(["composition", "final"]);
  });

  it("orders steps after the steps they use, whatever the declaration order", () => {
    const recipe = loadRecipe(
      base(`  final: {method: weighted_sum, inputs: {a: tex, b: mid}, alpha: COSINE}
  mid: {method: weighted_sum, inputs: {a: anime, b: comp}, alpha: 0.5}`),
    );
    expect(topologicalSteps(recipe)).toEqual(["mid", "final"]);
  });

  it("fills the merge policy's slot with BASE when none is named", () => {
    const recipe = loadRecipe(
      base(
        "  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}",
        "output: {path: o.safetensors, vae: {policy: merge}}",
      ),
    );
    expect(recipe.output.vae).toEqual({ policy: "merge", slot: "BASE" });
  });
});

describe("saveRecipe", () => {
  const rich = base(
    `  texture:
    method: add_difference
    inputs: {a: anime, b: tex, c: comp}
    alpha: [0.5, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 0.25, 0.3, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 0.125, 0.0625]
    block_rule: sd-mecha
    overrides:
      - {block: OUT04, pattern: attn2, value: 0.2}
      - {block: IN04-IN08, pattern: "*.ff.net.*", value: 0.1, param: alpha}
    arithmetic: lerp
  blend:
    method: weighted_sum
    inputs: {a: texture, b: comp}
    alpha: {curve: smoothstep, min: 0.1, max: 0.9, base: 0.3}
    seed: 42
  tied:
    method: triple_sum
    inputs: {a: blend, b: anime, c: tex}
    params: {alpha: {preset: COSINE, base: 0.2}, beta: 0.1}`,
    `output:
  step: tied
  path: out/mix.safetensors
  dtype: bf16
  prune: false
  vae: {policy: merge, slot: OUT11}
  metadata: hashes
  title: Test mix
  description: "a: b, with colons"
  author: me
  license: CreativeML Open RAIL-M
  tags: [anime, "1.5"]
  clip_skip: 2`,
  );

  for (const [name, text] of [
    ["the GyozaMix example", gyozamix],
    ["a recipe using every field", rich],
  ] as const) {
    it(`round-trips ${name}: load → save → load is identical`, () => {
      const first = loadRecipe(text);
      const saved = saveRecipe(first);
      const second = loadRecipe(saved);
      expect(second).toEqual(first);
      expect(saveRecipe(second)).toBe(saved);
    });
  }

  it("writes number vectors and overrides on one line", () => {
    const saved = saveRecipe(loadRecipe(rich));
    expect(saved).toContain("alpha: [ 0.5, 0, 0.1,");
    expect(saved).toContain("- { block: OUT04, pattern: attn2, value: 0.2 }");
  });
});

describe("loadRecipe rejects", () => {
  const cases: { name: string; text: string; path: string; message?: RegExp; fix?: string }[] = [
    {
      name: "a misspelt field, suggesting the right one",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, b: comp}, blok_rule: classic}"),
      path: "steps.mix.blok_rule",
      fix: 'did you mean "block_rule"?',
    },
    {
      name: "an unknown method, suggesting the closest id",
      text: base("  mix: {method: weighted_summ, inputs: {a: anime, b: comp}}"),
      path: "steps.mix.method",
      fix: 'did you mean "weighted_sum"?',
    },
    {
      name: "a reference to a missing input or step",
      text: base("  mix: {method: weighted_sum, inputs: {a: anmie, b: comp}}"),
      path: "steps.mix.inputs.a",
      fix: 'did you mean "anime"?',
    },
    {
      name: "an input name the method does not have",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, bb: comp}}"),
      path: "steps.mix.inputs.bb",
      fix: 'did you mean "b"?',
    },
    {
      name: "a missing method input",
      text: base("  mix: {method: add_difference, inputs: {a: anime, b: comp}}"),
      path: "steps.mix.inputs",
      message: /needs input "c"/,
    },
    {
      name: "steps that form a cycle",
      text: base(
        `  one: {method: weighted_sum, inputs: {a: anime, b: two}}
  two: {method: weighted_sum, inputs: {a: one, b: comp}}`,
        "output: {path: o.safetensors, step: two}",
      ),
      path: "steps.one.inputs",
      message: /cycle: one → two → one/,
    },
    {
      name: "a non-finite element of a weight vector, with its index",
      text: base(
        "  texture: {method: weighted_sum, inputs: {a: anime, b: comp}, params: {alpha: [0, 0, 0, .nan, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}}",
      ),
      path: "steps.texture.params.alpha[3]",
    },
    {
      name: "a weight vector of the wrong length",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, b: comp}, alpha: [0.1, 0.2, 0.3]}"),
      path: "steps.mix.alpha",
      message: /got 3/,
    },
    {
      name: "an unknown preset, suggesting the closest name",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, b: comp}, alpha: REVERSE_COSIN}"),
      path: "steps.mix.alpha",
      fix: 'did you mean "REVERSE_COSINE"?',
    },
    {
      name: "a parameter the method does not have",
      text: base("  mix: {method: triple_sum, inputs: {a: anime, b: comp, c: tex}, params: {bta: 0.2}}"),
      path: "steps.mix.params.bta",
      fix: 'did you mean "beta"?',
    },
    {
      name: "a per-block weight for a whole-model parameter",
      text: base(
        "  mix: {method: geometric_median, inputs: {a: anime, b: comp, c: tex}, params: {iterations: COSINE}}",
      ),
      path: "steps.mix.params.iterations",
    },
    {
      name: "a parameter outside its range",
      text: base(`  d: {method: subtract, inputs: {a: anime, b: comp}}
  drop: {method: dare, inputs: {a: d}, params: {p: 1.5}}
  out: {method: add_delta, inputs: {a: anime, d: drop}}`),
      path: "steps.drop.params.p",
      message: /outside 0..0.99/,
    },
    {
      name: "a delta fed where a model belongs",
      text: base(`  d: {method: subtract, inputs: {a: anime, b: comp}}
  mix: {method: weighted_sum, inputs: {a: anime, b: d}}`),
      path: "steps.mix.inputs.b",
      message: /takes a weight, got a delta/,
    },
    {
      name: "an output that is a delta",
      text: base("  d: {method: subtract, inputs: {a: anime, b: comp}}"),
      path: "output.step",
    },
    {
      name: "an unsupported version",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}").replace(
        "gyoza: 1",
        "gyoza: 2",
      ),
      path: "gyoza",
      message: /unsupported recipe version 2/,
    },
    {
      name: "a recipe without a version",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}").replace("gyoza: 1\n", ""),
      path: "gyoza",
    },
    {
      name: "an output step that does not exist",
      text: base(
        "  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}",
        "output: {path: o.safetensors, step: mx}",
      ),
      path: "output.step",
      fix: 'did you mean "mix"?',
    },
    {
      name: "several final steps without output.step",
      text: base(`  one: {method: weighted_sum, inputs: {a: anime, b: comp}}
  two: {method: weighted_sum, inputs: {a: anime, b: tex}}`),
      path: "output.step",
    },
    {
      name: "the bake policy without a file",
      text: base(
        "  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}",
        "output: {path: o.safetensors, vae: {policy: bake}}",
      ),
      path: "output.vae.file",
    },
    {
      name: "an unknown dtype, suggesting the closest",
      text: base(
        "  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}",
        "output: {path: o.safetensors, dtype: fp61}",
      ),
      path: "output.dtype",
      fix: 'did you mean "fp16"?',
    },
    {
      name: "a sha256 that is not 64 hex digits",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}").replace(
        "anime: {path: a.safetensors}",
        "anime: {path: a.safetensors, sha256: abc}",
      ),
      path: "inputs.anime.sha256",
    },
    {
      name: "an override on a block that does not exist",
      text: base(
        "  mix: {method: weighted_sum, inputs: {a: anime, b: comp}, overrides: [{block: OUT4, pattern: attn2, value: 0}]}",
      ),
      path: "steps.mix.overrides[0].block",
      fix: 'did you mean "OUT04"?',
    },
    {
      name: "a value of the wrong type",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, b: comp}, seed: lots}"),
      path: "steps.mix.seed",
      message: /number/,
    },
    {
      name: "a fractional seed",
      text: base("  mix: {method: weighted_sum, inputs: {a: anime, b: comp}, seed: 1.5}"),
      path: "steps.mix.seed",
      message: /expected a whole number, got 1.5/,
    },
    {
      name: "a clip skip above 12, naming the bound",
      text: base(
        "  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}",
        "output: {path: o.safetensors, clip_skip: 13}",
      ),
      path: "output.clip_skip",
      message: /13 is too large: the most allowed is 12/,
    },
    {
      name: "a step named like an input",
      text: base("  anime: {method: weighted_sum, inputs: {a: comp, b: tex}}"),
      path: "steps.anime",
    },
    {
      name: "duplicate keys",
      text: base(`  mix: {method: weighted_sum, inputs: {a: anime, b: comp}}
  mix: {method: weighted_sum, inputs: {a: anime, b: tex}}`),
      path: "line 8, column 3",
      message: /not valid YAML/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const error = failure(c.text);
      expect(error.code).toBe("recipe");
      expect(error.path).toBe(c.path);
      expect(error.file).toBe("test.yaml");
      if (c.message) expect(error.message).toMatch(c.message);
      if (c.fix) expect(error.fix).toBe(c.fix);
    });
  }

  it("a recipe larger than the size limit", () => {
    const error = failure(`# ${"x".repeat(MAX_RECIPE_BYTES)}\ngyoza: 1`);
    expect(error.code).toBe("limit");
  });

  it("a YAML alias bomb", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 12; i++)
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${new Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(", ")}]`,
      );
    const error = failure(lines.join("\n"));
    expect(error.code).toBe("recipe");
  });

  it("a deeply nested document, without overflowing the stack", () => {
    const error = failure(`gyoza: 1\ninputs: ${"[".repeat(100_000)}${"]".repeat(100_000)}`);
    expect(error.code).toBe("recipe");
  });

  it("a document that is not a mapping", () => {
    expect(failure("- just\n- a list\n").code).toBe("recipe");
  });
});
