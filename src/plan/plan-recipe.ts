import { isAbsolute, resolve } from "node:path";
import type { Detection } from "../arch/detect.js";
import { vaeTensorsForBaking } from "../arch/vae.js";
import { GyozaError } from "../errors.js";
import { parsePrecision } from "../io/dtype.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { outputFormatOf } from "../io/output-format.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import {
  builtinMethods,
  type Family,
  findMethod,
  type MethodRegistry,
  parseLoraBlockWeights,
} from "../merge/index.js";
import type { Recipe } from "../recipe/index.js";
import { finalSteps, resolveStepWeights, rootInput, topologicalSteps } from "../recipe/index.js";
import { checkCompatible } from "./check-compatible.js";
import { BAKED_VAE_SOURCE, type VaeFinish } from "./finish-plan.js";
import type { MergePlan, PlanLora, PlanWarning } from "./merge-plan.js";
import { planLoras, type StepLora } from "./plan-loras.js";
import { type PlanStep, planMerge } from "./plan-merge.js";

export interface PlanRecipeOptions {
  /** Relative paths in the recipe are resolved from here (the recipe file's folder). */
  baseDir?: string;
  methods?: MethodRegistry;
  /** Called before each input is opened (a caller checks expected hashes here). */
  beforeOpen?: (name: string, path: string) => Promise<void>;
}

/** A planned recipe with its files open: what streaming it needs. `close()` when done. */
export interface PlannedRecipe {
  readonly plan: MergePlan;
  /** The plan's sources' tensors, by the names the plan uses. */
  readonly sources: ReadonlyMap<string, ReadonlyMap<string, StoredTensor>>;
  readonly inputs: readonly { readonly name: string; readonly checkpoint: Checkpoint }[];
  readonly detection: Detection;
  close(): Promise<void>;
}

/** The output step: named, or the only step no other step uses. */
export function outputStepOf(recipe: Recipe): string {
  if (recipe.output.step) return recipe.output.step;
  const finals = finalSteps(recipe);
  if (finals.length !== 1) {
    throw new GyozaError(
      "recipe",
      `cannot tell which step is the output (candidates: ${finals.join(", ")})`,
      {
        path: "output.step",
        fix: "name it with output.step",
      },
    );
  }
  return finals[0]!;
}

/**
 * Opens a recipe's files (headers only), checks the architectures fit before anything is
 * allocated, resolves every step's weights once for the detected family and plans the merge.
 */
export async function planRecipe(recipe: Recipe, options: PlanRecipeOptions = {}): Promise<PlannedRecipe> {
  const baseDir = options.baseDir ?? process.cwd();
  const at = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const methods = options.methods ?? builtinMethods;
  const opened: Checkpoint[] = [];
  const close = () => Promise.all(opened.map((checkpoint) => checkpoint.close())).then(() => {});
  const outputPath = at(recipe.output.path);
  const format = outputFormatOf(outputPath); // an unknown extension is refused before any file is opened
  try {
    const loraInputs = new Set(
      Object.values(recipe.steps).flatMap((step) => (step.loras ?? []).map((lora) => lora.input)),
    );
    const inputs: { name: string; checkpoint: Checkpoint }[] = [];
    const loras: { name: string; checkpoint: Checkpoint }[] = [];
    const entries = Object.entries(recipe.inputs).map(([name, input]) => ({ name, path: at(input.path) }));
    // expected hashes first, one input at a time (a mismatch stops before the next is hashed), then
    // every input opened at once: reading a torch file's zip directory and pickle is a few small
    // dependent reads, whose waits on a cold disk overlap instead of adding up
    for (const { name, path } of entries) await options.beforeOpen?.(name, path);
    const settled = await Promise.allSettled(entries.map(({ path }) => openCheckpoint(path)));
    for (const result of settled) if (result.status === "fulfilled") opened.push(result.value);
    const failed = settled.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
    entries.forEach(({ name }, i) => {
      const checkpoint = (settled[i] as PromiseFulfilledResult<Checkpoint>).value;
      (loraInputs.has(name) ? loras : inputs).push({ name, checkpoint });
    });
    const detection = checkCompatible(inputs);
    const family = detection.family as Family;
    const vaeSlot = recipe.output.vae.policy === "merge" ? recipe.output.vae.slot : undefined;
    const model = modelTensors(inputs);
    const lorasPlanned: PlanLora[] = [];
    const warnings: PlanWarning[] = [];
    const steps: PlanStep[] = [];
    for (const name of topologicalSteps(recipe)) {
      const step = recipe.steps[name]!;
      const method = findMethod(methods, step.method, `steps.${name}.method`);
      let loraTerms: PlanStep["loraTerms"];
      if (method.bakesLoras) {
        const planned = await planLoras(name, stepLoras(name, step, loras), model, family);
        loraTerms = planned.terms;
        lorasPlanned.push(...planned.loras);
        warnings.push(...planned.warnings);
      }
      steps.push({
        name,
        method,
        inputs: method.inputs.map((input) => step.inputs[input.name]!),
        paramsForKey: resolveStepWeights(step, family, {
          methods,
          path: `steps.${name}`,
          ...(vaeSlot ? { vaeSlot } : {}),
        }),
        arithmetic: step.arithmetic,
        seed: step.seed ?? 0,
        rule: step.block_rule,
        ...(loraTerms ? { loraTerms } : {}),
      });
    }
    const outputStep = outputStepOf(recipe);
    const sources = new Map<string, ReadonlyMap<string, StoredTensor>>(
      [...inputs, ...loras].map((input) => [input.name, input.checkpoint.tensors]),
    );
    const vae = await vaeFinish(recipe, outputStep, at, opened, sources);
    const plan = planMerge({
      inputs,
      steps,
      outputStep,
      output: {
        path: outputPath,
        format,
        dtype: parsePrecision(recipe.output.dtype),
      },
      finish: {
        dtype: parsePrecision(recipe.output.dtype),
        prune: recipe.output.prune,
        resetPositionIds: true,
        vae,
      },
      detection,
      family,
      loraSources: loras.map((lora) => ({ name: lora.name, path: lora.checkpoint.path })),
      loras: lorasPlanned,
      warnings,
    });
    // the LoRA files are inputs too: hashed and recorded in the output's provenance, after the models
    return { plan, sources, inputs: [...inputs, ...loras], detection, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Every model input's tensors, the first input's where several have a key: what LoRAs must fit. */
function modelTensors(inputs: readonly { checkpoint: Checkpoint }[]): Map<string, StoredTensor> {
  const tensors = new Map<string, StoredTensor>();
  for (const { checkpoint } of inputs)
    for (const [key, tensor] of checkpoint.tensors) if (!tensors.has(key)) tensors.set(key, tensor);
  return tensors;
}

/** An add_lora step's LoRAs with their files open and their block weights parsed. */
function stepLoras(
  name: string,
  step: Recipe["steps"][string],
  opened: readonly { name: string; checkpoint: Checkpoint }[],
): StepLora[] {
  return (step.loras ?? []).map((lora, i) => {
    const path = `steps.${name}.loras[${i}]`;
    return {
      source: lora.input,
      checkpoint: opened.find((input) => input.name === lora.input)!.checkpoint,
      ratio: lora.ratio,
      weights: parseLoraBlockWeights(lora.weights, { where: `${path}.weights`, code: "recipe" }),
      path,
    };
  });
}

/** The recipe's VAE policy as a finishing choice; a baked VAE file is opened and becomes a source. */
async function vaeFinish(
  recipe: Recipe,
  outputStep: string,
  at: (path: string) => string,
  opened: Checkpoint[],
  sources: Map<string, ReadonlyMap<string, StoredTensor>>,
): Promise<VaeFinish> {
  switch (recipe.output.vae.policy) {
    case "bake": {
      const file = recipe.output.vae.file;
      if (!file) throw new GyozaError("recipe", "VAE policy bake needs a file", { path: "output.vae.file" });
      const checkpoint = await openCheckpoint(at(file));
      opened.push(checkpoint);
      sources.set(BAKED_VAE_SOURCE, checkpoint.tensors);
      return { policy: "bake", file: checkpoint.path, tensors: vaeTensorsForBaking(checkpoint) };
    }
    case "take-b": {
      const input = rootInput(recipe, outputStep, "b");
      if (!input)
        throw new GyozaError("recipe", `step "${outputStep}" has no input b to take the VAE from`, {
          path: "output.vae.policy",
        });
      return { policy: "take", source: input };
    }
    case "merge":
      return { policy: "as-planned" };
    default:
      return { policy: "keep-first" };
  }
}
