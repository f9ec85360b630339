import { GyozaError } from "../errors.js";
import { isFloatDType } from "../io/dtype.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import type { MergeMethod } from "../merge/methods/index.js";

/** A named model the graph reads. */
export interface GraphInput {
  readonly name: string;
  readonly checkpoint: Checkpoint;
}

/** A merge step: a method over earlier nodes (inputs or steps) with per-key parameters. */
export interface GraphStep {
  readonly name: string;
  readonly method: MergeMethod;
  /** Node names in the method's input order. */
  readonly inputs: readonly string[];
  /** The resolved parameters for a key, or null when the key is not merged (copied from the first input). */
  paramsForKey(key: string): Readonly<Record<string, number>> | null;
  readonly arithmetic: "fp32" | "lerp";
  readonly seed: number;
}

/** Inputs, then steps in dependency order; the last step (or `output`) is the result. */
export interface MergeGraph {
  readonly inputs: readonly GraphInput[];
  readonly steps: readonly GraphStep[];
  readonly output: string;
}

/** How one output key is computed: a tree of reads, copies and merges. */
export type KeyPlan =
  | { readonly kind: "read"; readonly input: string; readonly tensor: StoredTensor }
  | {
      readonly kind: "merge";
      readonly step: GraphStep;
      readonly params: Readonly<Record<string, number>>;
      readonly args: readonly KeyPlan[];
    };

export interface PlannedKey {
  readonly key: string;
  readonly shape: readonly number[];
  readonly plan: KeyPlan;
  /** The tensor whose dtype the output keeps by default (the first model that has the key). */
  readonly primary: StoredTensor;
}

export interface GraphPlan {
  readonly keys: PlannedKey[];
  /** Keys a step copied from a later input because its first input lacks them ("keys only in B"). */
  readonly copiedFromLaterInputs: { key: string; step: string; from: string }[];
  /** Keys not merged because an input lacks them or they are not weights/biases. */
  readonly passedThrough: number;
}

/**
 * Resolves, from headers alone, how every output key is produced. Shapes of merged tensors must
 * agree; nothing is read or allocated here.
 */
export function planGraph(graph: MergeGraph): GraphPlan {
  const inputs = new Map(graph.inputs.map((input) => [input.name, input]));
  const steps = new Map(graph.steps.map((step) => [step.name, step]));
  const copied: GraphPlan["copiedFromLaterInputs"] = [];
  let passedThrough = 0;

  const resolve = (node: string, key: string): KeyPlan | undefined => {
    const input = inputs.get(node);
    if (input) {
      const tensor = input.checkpoint.tensors.get(key);
      return tensor ? { kind: "read", input: node, tensor } : undefined;
    }
    const step = steps.get(node)!;
    const args = step.inputs.map((name) => resolve(name, key));
    const present = args.filter((arg): arg is KeyPlan => arg !== undefined);
    if (present.length === 0) return undefined;
    if (args[0] === undefined)
      copied.push({ key, step: step.name, from: step.inputs[args.indexOf(present[0])]! });
    const params = present.length === args.length ? step.paramsForKey(key) : null;
    const dtype = leafOf(present[0]!).dtype;
    if (params === null || !isFloatDType(dtype) || key.endsWith("position_ids")) {
      passedThrough++;
      return present[0];
    }
    const shapes = present.map((arg) => leafOf(arg).shape.join(","));
    const mismatch = shapes.findIndex((shape) => shape !== shapes[0]);
    if (mismatch > 0) {
      throw new GyozaError(
        "architecture-mismatch",
        `step "${step.name}": ${key} has shape [${shapes[0]}] in ${step.inputs[0]} but [${shapes[mismatch]}] in ${step.inputs[mismatch]}`,
        {
          fix: "merge models of the same architecture and variant (an inpainting UNet has 9 input channels)",
        },
      );
    }
    return { kind: "merge", step, params, args: present };
  };

  const keys: PlannedKey[] = [];
  const seen = new Set<string>();
  for (const input of graph.inputs) {
    for (const key of input.checkpoint.tensors.keys()) {
      if (seen.has(key)) continue;
      seen.add(key);
      const plan = resolve(graph.output, key);
      if (!plan) continue;
      const primary = leafOf(plan);
      keys.push({ key, shape: primary.shape, plan, primary });
    }
  }
  return { keys, copiedFromLaterInputs: copied, passedThrough };
}

/** The first stored tensor a plan reads (its dtype and shape describe the output by default). */
export function leafOf(plan: KeyPlan): StoredTensor {
  return plan.kind === "read" ? plan.tensor : leafOf(plan.args[0]!);
}

/** Whether every method on the plan's path may work on sub-ranges of the tensor. */
export function isElementwise(plan: KeyPlan): boolean {
  return (
    plan.kind === "read" || (plan.step.method.granularity === "elementwise" && plan.args.every(isElementwise))
  );
}
