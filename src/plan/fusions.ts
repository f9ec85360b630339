import { KERNEL_DTYPES } from "../kernels/merge-kernel.js";
import type { FusionName } from "../merge/index.js";
import type { PlanOp, ReadOp } from "./merge-plan.js";

/** What a fusion needs to know of the steps: which fusions each step's method declares. */
interface FusingStep {
  readonly name: string;
  readonly method: { readonly fusions?: readonly FusionName[] };
}

/**
 * The planning rewrites methods declare (`MergeMethod.fusions`), applied bottom-up after
 * finishing. Each is bit-identical to the ops it replaces (kernels-agree and engine tests).
 */
const FUSIONS: Readonly<Record<FusionName, (op: PlanOp) => PlanOp | undefined>> = {
  "nested-weighted-sum": nestedWeightedSum,
};

export function applyFusions(op: PlanOp, steps: readonly FusingStep[]): PlanOp {
  if (!("args" in op)) return op;
  const args = op.args.map((arg) => applyFusions(arg, steps));
  let fused = { ...op, args } as PlanOp;
  const fusions = steps.find((step) => step.name === (op as { step: string }).step)?.method.fusions ?? [];
  for (const name of fusions) fused = FUSIONS[name](fused) ?? fused;
  return fused;
}

function isKernelRead(op: PlanOp): op is ReadOp {
  return op.op === "read" && KERNEL_DTYPES.has(op.dtype);
}

/**
 * An fp32 weighted sum whose operands are an fp32 weighted sum of two kernel reads and a kernel
 * read, in either order (GyozaMix's texture over composition): one kernel pass, no f32 intermediate.
 */
function nestedWeightedSum(op: PlanOp): PlanOp | undefined {
  if (op.op !== "weighted-sum") return undefined;
  const [first, second] = op.args;
  const isInner = (node: PlanOp) => node.op === "weighted-sum" && node.args.every(isKernelRead);
  const innerFirst = isInner(first) && isKernelRead(second);
  if (!innerFirst && !(isInner(second) && isKernelRead(first))) return undefined;
  const inner = (innerFirst ? first : second) as PlanOp & { op: "weighted-sum" };
  const other = (innerFirst ? second : first) as ReadOp;
  return {
    op: "nested-weighted-sum",
    step: op.step,
    slot: op.slot,
    innerStep: inner.step,
    innerAlpha: inner.alpha,
    alpha: op.alpha,
    innerFirst,
    args: [inner.args[0] as ReadOp, inner.args[1] as ReadOp, other],
  };
}
