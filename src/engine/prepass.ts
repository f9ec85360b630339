import { elementCount } from "../io/dtype.js";
import type { StoredTensor } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { evaluateNode, type PrepassParams, readLeaves } from "./evaluate-key.js";
import type { GraphStep, KeyPlan, PlannedKey } from "./merge-graph.js";

/**
 * Runs the pre-pass of every step whose method has one (supermerger's cosine merges normalise by
 * the similarity range over all keys): the step's inputs are evaluated for each key it merges, one
 * whole tensor at a time, measured, and summarised into parameters for the real pass.
 */
export async function runPrepasses(
  keys: readonly PlannedKey[],
  steps: readonly GraphStep[],
  kernel: MergeKernel,
): Promise<PrepassParams> {
  const result = new Map<string, Readonly<Record<string, number>>>();
  for (const step of steps) {
    const prepass = step.method.prepass;
    if (!prepass) continue;
    const measurements: Float64Array[] = [];
    for (const planned of keys) {
      if (!prepass.includes(planned.key)) continue;
      for (const node of nodesOf(planned.plan, step)) {
        const count = elementCount(planned.shape);
        const reads = await readLeaves(node, 0, count, new Map<StoredTensor, Promise<Uint8Array>>());
        const context = {
          key: planned.key,
          reads,
          begin: 0,
          count,
          kernel,
          shape: planned.shape,
          prepass: result,
          allocateF32: (elements: number) => new Float32Array(elements),
        };
        const inputs = node.args.map((arg) => evaluateNode(arg, context));
        measurements.push(
          prepass.measure(inputs, {
            key: planned.key,
            arithmetic: step.arithmetic,
            seed: step.seed,
            elementOffset: 0,
            shape: planned.shape,
          }),
        );
      }
    }
    result.set(step.name, prepass.finish(measurements));
  }
  return result;
}

function nodesOf(plan: KeyPlan, step: GraphStep): (KeyPlan & { kind: "merge" })[] {
  if (plan.kind === "read") return [];
  const below = plan.args.flatMap((arg) => nodesOf(arg, step));
  return plan.step === step ? [...below, plan] : below;
}
