import type { Detection } from "../arch/detect.js";
import { GyozaError } from "../errors.js";
import { isFloatDType } from "../io/dtype.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import { type BlockRule, type Family, loraSlotOfKey, type MergeMethod, slotOfKey } from "../merge/index.js";
import { type FinishChoices, finishPlan, readOf, type UnfinishedKey } from "./finish-plan.js";
import { applyFusions } from "./fusions.js";
import {
  deepFreeze,
  type LoraTermPlan,
  type MergePlan,
  type PlanLora,
  type PlanOp,
  type PlanOutput,
  type PlanWarning,
} from "./merge-plan.js";

/** A recipe step as the planner needs it: a method over earlier nodes, with per-key parameters. */
export interface PlanStep {
  readonly name: string;
  readonly method: MergeMethod;
  /** Node names (inputs or earlier steps) in the method's input order. */
  readonly inputs: readonly string[];
  /** The resolved parameters for a key, or null when the key is not merged (copied from the first input). */
  paramsForKey(key: string): Readonly<Record<string, number>> | null;
  readonly arithmetic: "fp32" | "lerp";
  readonly seed: number;
  /** The key → block rule, to label each merged key with the slot its weight came from. */
  readonly rule: BlockRule;
  /** For a step whose method bakes LoRAs: each changed key's terms (`planLoras`). */
  readonly loraTerms?: ReadonlyMap<string, readonly LoraTermPlan[]>;
}

export interface PlanMergeOptions {
  /** Inputs in recipe order: the first that has a key gives its shape and dtype. */
  readonly inputs: readonly { readonly name: string; readonly checkpoint: Checkpoint }[];
  /** Steps in dependency order. */
  readonly steps: readonly PlanStep[];
  /** The step written out. */
  readonly outputStep: string;
  readonly output: PlanOutput;
  readonly finish: FinishChoices;
  readonly detection: Detection;
  readonly family: Family;
  /** The LoRA files the steps bake in (recipe inputs that are no models), by source name. */
  readonly loraSources?: readonly { readonly name: string; readonly path: string }[];
  /** The LoRAs the steps bake in and the warnings their planning gave (`planLoras`). */
  readonly loras?: readonly PlanLora[];
  readonly warnings?: readonly PlanWarning[];
}

/**
 * Decides from headers alone how every output key is produced (nothing is read or allocated):
 * each step's method becomes its kernel op or its own function, merged shapes must agree, keys a
 * first input lacks come from a later one, finishing runs once, then the methods' declared fusions
 * rewrite the ops. The result is frozen.
 */
export function planMerge(options: PlanMergeOptions): MergePlan {
  const inputs = new Map(options.inputs.map((input) => [input.name, input.checkpoint]));
  const steps = new Map(options.steps.map((step) => [step.name, step]));
  const onlyInLaterInputs: { key: string; step: string; from: string }[] = [];

  const build = (node: string, key: string): { op: PlanOp; primary: StoredTensor } | undefined => {
    const checkpoint = inputs.get(node);
    if (checkpoint) {
      const tensor = checkpoint.tensors.get(key);
      return tensor ? { op: readOf(node, tensor), primary: tensor } : undefined;
    }
    const step = steps.get(node)!;
    if (step.loraTerms) return withLoras(step, key, build(step.inputs[0]!, key));
    const args = step.inputs.map((name) => build(name, key));
    const present = args.filter((arg) => arg !== undefined);
    if (present.length === 0) return undefined;
    if (args[0] === undefined)
      onlyInLaterInputs.push({ key, step: step.name, from: step.inputs[args.indexOf(present[0])]! });
    const params = present.length === args.length ? step.paramsForKey(key) : null;
    const first = present[0]!;
    if (params === null || !isFloatDType(first.primary.dtype) || key.endsWith("position_ids")) return first;
    checkShapes(step, key, args);
    return {
      op: mergeOp(
        step,
        key,
        params,
        options.family,
        present.map((arg) => arg.op),
      ),
      primary: first.primary,
    };
  };

  const unfinished: UnfinishedKey[] = [];
  const seen = new Set<string>();
  for (const input of options.inputs) {
    for (const key of input.checkpoint.tensors.keys()) {
      if (seen.has(key)) continue;
      seen.add(key);
      const built = build(options.outputStep, key);
      if (built) unfinished.push({ key, ...built });
    }
  }
  const { keys, finishing } = finishPlan(unfinished, options.finish, options.detection);
  const kept = new Set(keys.map((planned) => planned.key));
  const sources: Record<string, string> = {};
  for (const input of options.inputs) sources[input.name] = input.checkpoint.path;
  for (const lora of options.loraSources ?? []) sources[lora.name] = lora.path;
  if (options.finish.vae.policy === "bake") sources["@vae"] = options.finish.vae.file;
  return deepFreeze({
    schema: "gyoza.plan/1",
    architecture: options.detection.id,
    family: options.family,
    sources,
    steps: options.steps.map((step) => ({
      name: step.name,
      method: step.method.id,
      inputs: [...step.inputs],
      arithmetic: step.arithmetic,
    })),
    output: options.output,
    keys: keys.map((planned) => ({ ...planned, op: applyFusions(planned.op, options.steps) })),
    finishing,
    onlyInLaterInputs: dedupe(onlyInLaterInputs).filter((entry) => kept.has(entry.key)),
    loras: options.loras ?? [],
    warnings: options.warnings ?? [],
  });
}

/** A key of an add_lora step: its input with the LoRAs' terms for the key added, or the input as is. */
function withLoras(
  step: PlanStep,
  key: string,
  input: { op: PlanOp; primary: StoredTensor } | undefined,
): { op: PlanOp; primary: StoredTensor } | undefined {
  const terms = step.loraTerms?.get(key);
  if (!input || !terms || terms.length === 0 || !isFloatDType(input.primary.dtype)) return input;
  return {
    op: { op: "add-lora", step: step.name, slot: loraSlotOfKey(key), args: [input.op], terms },
    primary: input.primary,
  };
}

/** The op a step's method runs for one key: its kernel op where it has one, else its own function. */
function mergeOp(
  step: PlanStep,
  key: string,
  params: Readonly<Record<string, number>>,
  family: Family,
  args: readonly PlanOp[],
): PlanOp {
  const origin = { step: step.name, slot: slotOfKey(key, family, step.rule) };
  const kernelOp = step.method.kernelOp?.(step.arithmetic);
  if (kernelOp === "weighted-sum" || kernelOp === "lerp")
    return { op: kernelOp, ...origin, alpha: params.alpha!, args: [args[0]!, args[1]!] };
  if (kernelOp === "add-difference")
    return { op: kernelOp, ...origin, alpha: params.alpha!, args: [args[0]!, args[1]!, args[2]!] };
  return {
    op: "method",
    ...origin,
    method: step.method.id,
    params: { ...params },
    arithmetic: step.arithmetic,
    seed: step.seed,
    granularity: step.method.granularity,
    args,
  };
}

function checkShapes(
  step: PlanStep,
  key: string,
  args: readonly ({ primary: StoredTensor } | undefined)[],
): void {
  const shapes = args.map((arg) => arg?.primary.shape.join(","));
  const first = shapes.findIndex((shape) => shape !== undefined);
  const mismatch = shapes.findIndex((shape) => shape !== undefined && shape !== shapes[first]);
  if (mismatch < 0) return;
  throw new GyozaError(
    "architecture-mismatch",
    `step "${step.name}": ${key} has shape [${shapes[first]}] in ${step.inputs[first]} but [${shapes[mismatch]}] in ${step.inputs[mismatch]}`,
    { fix: "merge models of the same architecture and variant (an inpainting UNet has 9 input channels)" },
  );
}

function dedupe<T extends { key: string }>(items: T[]): T[] {
  return [...new Map(items.map((item) => [item.key, item])).values()];
}
