import { elementCount } from "../io/dtype.js";
import type { StoredTensor } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { BoundOp } from "./bind-plan.js";
import { evaluateNode, type PrepassParams, readLeaves } from "./evaluate-op.js";
import { loadLoraFactors, loraTermsOf } from "./lora-factors.js";

/** A key as the stream runs it. */
export interface BoundKey {
  readonly key: string;
  readonly shape: readonly number[];
  readonly op: BoundOp;
}

/**
 * Runs the pre-pass of every step whose method has one (supermerger's cosine merges normalise by
 * the similarity range over all keys), steps in dependency order: the step's inputs are evaluated
 * for each key it merges, one whole tensor at a time, measured, and summarised into parameters for
 * the real pass.
 */
export async function runPrepasses(
  keys: readonly BoundKey[],
  stepOrder: readonly string[],
  kernel: MergeKernel,
): Promise<PrepassParams> {
  const result = new Map<string, Readonly<Record<string, number>>>();
  for (const step of stepOrder) {
    const measurements: Float64Array[] = [];
    let prepass: NonNullable<MethodOp["method"]["prepass"]> | undefined;
    for (const planned of keys) {
      for (const node of methodOpsOf(planned.op, step)) {
        prepass = node.method.prepass;
        if (!prepass?.includes(planned.key)) continue;
        const count = elementCount(planned.shape);
        const reads = await readLeaves(node, 0, count, new Map<StoredTensor, Promise<Uint8Array>>());
        const terms = loraTermsOf(node);
        const factors = terms.length > 0 ? await loadLoraFactors(terms, kernel) : undefined;
        const context = {
          factors: factors?.byTerm,
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
            arithmetic: node.arithmetic,
            seed: node.seed,
            elementOffset: 0,
            shape: planned.shape,
          }),
        );
      }
    }
    if (prepass) result.set(step, prepass.finish(measurements));
  }
  return result;
}

type MethodOp = BoundOp & { op: "method" };

function methodOpsOf(op: BoundOp, step: string): MethodOp[] {
  if (op.op === "read") return [];
  const below = (op.args as readonly BoundOp[]).flatMap((arg) => methodOpsOf(arg, step));
  return op.op === "method" && op.step === step && op.method.prepass ? [...below, op] : below;
}
