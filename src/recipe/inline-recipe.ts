import { GyozaError, isGyozaError } from "../errors.js";
import {
  type BlockRule,
  builtinMethods,
  type ElementalOverride,
  findMethod,
  type MethodRegistry,
  parseWeightArgument,
  type WeightSpec,
} from "../merge/index.js";
import { recipeFromData } from "./load-recipe.js";
import { type InlineLora, loraInputName, parseLoraArgument } from "./lora-argument.js";
import type { MetadataPolicy, OutputDtype, Recipe, RecipeStep, VaePolicy } from "./recipe-types.js";
import { RECIPE_VERSION } from "./recipe-types.js";

/** What `gyoza merge A B --method … --alpha … -o OUT` says, before it becomes a one-step recipe. */
export interface InlineMergeArgs {
  /** Model files, in the order of the method's inputs (a, b, c). */
  a: string;
  b?: string;
  c?: string;
  method: string;
  /** A weight as typed (`0.3`, `COSINE`, `0,0.1,…`) or an already parsed spec. */
  alpha?: string | WeightSpec;
  beta?: string | WeightSpec;
  /** BASE weight for alpha (`--base`). */
  base?: number;
  /** Other parameters (`k`, `p`, …): numbers or weights as typed. */
  params?: Record<string, string | WeightSpec>;
  output: string;
  dtype?: OutputDtype;
  prune?: boolean;
  vae?: VaePolicy;
  vaeFile?: string;
  vaeSlot?: string;
  metadata?: MetadataPolicy;
  arithmetic?: "fp32" | "lerp";
  blockRule?: BlockRule;
  seed?: number;
  overrides?: ElementalOverride[];
  title?: string;
  /** Allow mixing weights outside 0..1 (`--allow-extrapolation`). */
  extrapolate?: boolean;
  /** LoRAs to bake in after the merge (`--lora FILE:RATIO[:WEIGHTS]`, as typed or parsed). */
  loras?: readonly (string | InlineLora)[];
}

export const INLINE_STEP = "merge";
/** The step that bakes `--lora` files in: over the merge, or over the one model given. */
export const INLINE_LORA_STEP = "loras";

/** The one-step recipe the inline CLI form stands for, validated like a recipe file. */
export function recipeFromInlineArgs(
  args: InlineMergeArgs,
  methods: MethodRegistry = builtinMethods,
): Recipe {
  const files = [args.a, args.b, args.c].filter((file): file is string => file !== undefined);
  const loras = (args.loras ?? []).map((lora) => (typeof lora === "string" ? parseLoraArgument(lora) : lora));
  // one model and LoRAs: nothing to merge, the LoRAs are baked into it
  if (loras.length > 0 && files.length === 1) return bakedOnly(args, loras, methods);
  const method = findMethod(methods, args.method, "method");
  if (files.length > method.inputs.length) {
    throw new GyozaError(
      "usage",
      `${method.id} takes ${method.inputs.length} models (${method.inputs.map((i) => i.name).join(", ")}), got ${files.length}`,
    );
  }
  if (files.length < method.inputs.length) {
    throw new GyozaError(
      "usage",
      `${method.id} takes ${method.inputs.length} models (${method.inputs.map((i) => i.name).join(", ")}), got ${files.length}`,
      {
        fix: `gyoza merge ${method.inputs.map((i) => i.name.toUpperCase()).join(" ")} --method ${method.id} -o OUT`,
      },
    );
  }
  if (args.output.trim() === "") {
    throw new GyozaError("usage", "the one-step form needs an output file", {
      fix: "add -o OUTPUT.safetensors",
    });
  }
  const inputs: Record<string, { path: string }> = {};
  const stepInputs: Record<string, string> = {};
  method.inputs.forEach((input, i) => {
    const file = files[i];
    if (file === undefined) return;
    inputs[input.name] = { path: file };
    stepInputs[input.name] = input.name;
  });
  const step: Partial<RecipeStep> & Pick<RecipeStep, "method" | "inputs"> = {
    method: method.id,
    inputs: stepInputs,
  };
  const alpha = parseSpec(args.alpha, "--alpha");
  const hasAlpha = method.params.some((param) => param.name === "alpha");
  if (args.base !== undefined && hasAlpha) {
    step.alpha = withBase(alpha ?? method.params.find((p) => p.name === "alpha")!.default, args.base);
  } else if (alpha !== undefined) {
    step.alpha = alpha;
  }
  const beta = parseSpec(args.beta, "--beta");
  if (beta !== undefined) step.beta = beta;
  if (args.params && Object.keys(args.params).length > 0) {
    step.params = Object.fromEntries(
      Object.entries(args.params).map(([name, value]) => [name, parseSpec(value, `--${name}`)!]),
    );
  }
  if (args.blockRule) step.block_rule = args.blockRule;
  if (args.arithmetic) step.arithmetic = args.arithmetic;
  if (args.seed !== undefined) step.seed = args.seed;
  if (args.extrapolate) step.extrapolate = true;
  if (args.overrides && args.overrides.length > 0) step.overrides = args.overrides;
  const output: Record<string, unknown> = outputOf(args);
  const steps: Record<string, unknown> = { [INLINE_STEP]: step };
  if (loras.length > 0) {
    steps[INLINE_LORA_STEP] = loraStep(INLINE_STEP, loras, inputs);
    output.step = INLINE_LORA_STEP;
  }
  return validated({ gyoza: RECIPE_VERSION, inputs, steps, output }, methods);
}

function validated(data: unknown, methods: MethodRegistry): Recipe {
  try {
    return recipeFromData(data, { methods });
  } catch (error) {
    throw isGyozaError(error, "recipe") ? asFlagError(error) : error;
  }
}

/** `gyoza merge MODEL --lora …`: one add_lora step over the model. */
function bakedOnly(args: InlineMergeArgs, loras: readonly InlineLora[], methods: MethodRegistry): Recipe {
  if (args.method !== "weighted_sum" || args.alpha !== undefined || args.beta !== undefined) {
    throw new GyozaError("usage", "one model with --lora bakes the LoRAs in: there is nothing to merge", {
      fix: "leave out --method/--alpha/--beta, or give the models to merge before the LoRAs are baked in",
    });
  }
  if (args.output.trim() === "") {
    throw new GyozaError("usage", "baking LoRAs needs an output file", { fix: "add -o OUTPUT.safetensors" });
  }
  const inputs: Record<string, { path: string }> = { a: { path: args.a } };
  const step = loraStep("a", loras, inputs);
  const output = outputOf(args);
  return validated(
    {
      gyoza: RECIPE_VERSION,
      inputs,
      steps: { [INLINE_LORA_STEP]: step },
      output: { ...output, step: INLINE_LORA_STEP },
    },
    methods,
  );
}

/** An add_lora step over `over`, each LoRA file a recipe input named after its stem. */
function loraStep(over: string, loras: readonly InlineLora[], inputs: Record<string, { path: string }>) {
  return {
    method: "add_lora",
    inputs: { a: over },
    loras: loras.map((lora) => {
      const name = loraInputName(lora.path, new Set([...Object.keys(inputs), INLINE_STEP, INLINE_LORA_STEP]));
      inputs[name] = { path: lora.path };
      return {
        input: name,
        ratio: lora.ratio,
        ...(lora.weights !== undefined ? { weights: lora.weights } : {}),
      };
    }),
  };
}

/** The output section the flags say. */
function outputOf(args: InlineMergeArgs): Record<string, unknown> {
  const vae = {
    policy: args.vae ?? "keep-a",
    ...(args.vaeFile ? { file: args.vaeFile } : {}),
    ...(args.vaeSlot ? { slot: args.vaeSlot } : {}),
  };
  return {
    path: args.output,
    ...(args.dtype ? { dtype: args.dtype } : {}),
    ...(args.prune !== undefined ? { prune: args.prune } : {}),
    vae,
    ...(args.metadata ? { metadata: args.metadata } : {}),
    ...(args.title ? { title: args.title } : {}),
  };
}

function parseSpec(value: string | WeightSpec | undefined, flag: string): WeightSpec | undefined {
  return typeof value === "string" ? parseWeightArgument(value, flag) : value;
}

/** Where each field of the one-step recipe comes from on the command line. */
const FLAG_OF_PATH: readonly [RegExp, string][] = [
  [new RegExp(`^steps\\.${INLINE_STEP}\\.alpha\\.base`), "--base"],
  [new RegExp(`^steps\\.${INLINE_STEP}\\.(alpha|beta)`), "--$1"],
  [new RegExp(`^steps\\.${INLINE_STEP}\\.params\\.(\\w+)`), "--$1"],
  [new RegExp(`^steps\\.${INLINE_STEP}\\.block_rule`), "--block-rule"],
  [new RegExp(`^steps\\.${INLINE_STEP}\\.(arithmetic|seed|method)`), "--$1"],
  [new RegExp(`^steps\\.${INLINE_STEP}\\.extrapolate`), "--allow-extrapolation"],
  [new RegExp(`^steps\\.${INLINE_STEP}\\.overrides`), "--override"],
  [new RegExp(`^steps\\.${INLINE_LORA_STEP}\\.`), "--lora"],
  [/^output\.path/, "--output"],
  [/^output\.vae\.file/, "--bake-vae"],
  [/^output\.vae\.slot/, "--vae-slot"],
  [/^output\.vae/, "--vae"],
  [/^output\.(dtype|prune|metadata|title)/, "--$1"],
];

/**
 * A recipe error about the one-step recipe the flags built, told in the flags' words: the user
 * typed `--base`, not `steps.merge.alpha.base`. Errors about the flags are usage errors (exit 2).
 */
function asFlagError(error: GyozaError): GyozaError {
  const path = error.path ?? "";
  for (const [pattern, flag] of FLAG_OF_PATH) {
    const match = pattern.exec(path);
    if (!match) continue;
    const name = flag.replace("$1", match[1] ?? "").replace("_", "-");
    return new GyozaError("usage", error.message, { path: name, fix: flagFix(error.fix), cause: error });
  }
  return new GyozaError("usage", error.message, { fix: flagFix(error.fix), cause: error });
}

function flagFix(fix: string | undefined): string | undefined {
  return fix?.includes("extrapolate: true") ? "if you mean it, add --allow-extrapolation" : fix;
}

function withBase(spec: WeightSpec, base: number): WeightSpec {
  if (typeof spec === "number") return { value: spec, base };
  if (typeof spec === "string") return { preset: spec, base };
  if (Array.isArray(spec)) return { values: spec as readonly number[], base };
  return { ...(spec as object), base } as WeightSpec;
}
