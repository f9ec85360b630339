import { freshPositionIds } from "../arch/position-ids.js";
import { GyozaError } from "../errors.js";
import { elementCount } from "../io/dtype.js";
import type { StoredTensor } from "../io/tensor.js";
import { findMethod, type MergeMethod, type MethodRegistry } from "../merge/index.js";
import type { LoraTermPlan, PlanKey, PlanOp } from "../plan/merge-plan.js";

/** A plan's read, bound to the stored tensor it names. */
export interface BoundRead {
  readonly op: "read";
  readonly tensor: StoredTensor;
}

/** A plan op bound to what running it needs: stored tensors for reads, method objects for methods. */
export type BoundOp =
  | BoundRead
  | { readonly op: "weighted-sum"; readonly alpha: number; readonly args: readonly [BoundOp, BoundOp] }
  | { readonly op: "lerp"; readonly alpha: number; readonly args: readonly [BoundOp, BoundOp] }
  | {
      readonly op: "add-difference";
      readonly alpha: number;
      readonly args: readonly [BoundOp, BoundOp, BoundOp];
    }
  | {
      readonly op: "nested-weighted-sum";
      readonly innerAlpha: number;
      readonly alpha: number;
      readonly innerFirst: boolean;
      readonly args: readonly [BoundRead, BoundRead, BoundRead];
    }
  | { readonly op: "add-lora"; readonly args: readonly [BoundOp]; readonly terms: readonly BoundLoraTerm[] }
  | {
      readonly op: "method";
      readonly method: MergeMethod;
      readonly step: string;
      readonly params: Readonly<Record<string, number>>;
      readonly arithmetic: "fp32" | "lerp";
      readonly seed: number;
      readonly args: readonly BoundOp[];
    };

/**
 * One LoRA module's change to a weight of `cols` columns: `multiplier · (up @ down)` added to rows
 * [first, first + count), up [count, rank] and down [rank, cols] as stored (any shape that flattens so).
 */
export interface BoundLoraTerm {
  readonly up: StoredTensor;
  readonly down: StoredTensor;
  readonly rank: number;
  readonly cols: number;
  readonly first: number;
  readonly count: number;
  readonly multiplier: number;
}

/** Each source of a plan: its tensors by the key the plan names them with. */
export type PlanSources = ReadonlyMap<string, ReadonlyMap<string, StoredTensor>>;

/**
 * Binds one planned key: every read to its stored tensor (whose header must still say what the
 * plan saw), every method op to the registry's method. The only place a method id is looked up.
 */
export function bindKey(planned: PlanKey, sources: PlanSources, methods: MethodRegistry): BoundOp {
  const bind = (op: PlanOp): BoundOp => {
    switch (op.op) {
      case "read":
        return { op: "read", tensor: sourceTensor(sources, op.source, op.key, op.dtype) };
      case "arange":
        return { op: "read", tensor: freshPositionIds(planned.key) };
      case "weighted-sum":
        return { op: op.op, alpha: op.alpha, args: [bind(op.args[0]), bind(op.args[1])] };
      case "lerp":
        return { op: op.op, alpha: op.alpha, args: [bind(op.args[0]), bind(op.args[1])] };
      case "add-difference":
        return { op: op.op, alpha: op.alpha, args: [bind(op.args[0]), bind(op.args[1]), bind(op.args[2])] };
      case "nested-weighted-sum":
        return {
          op: op.op,
          innerAlpha: op.innerAlpha,
          alpha: op.alpha,
          innerFirst: op.innerFirst,
          args: op.args.map((arg) => bind(arg)) as unknown as readonly [BoundRead, BoundRead, BoundRead],
        };
      case "add-lora":
        return { op: op.op, args: [bind(op.args[0])], terms: op.terms.map((term) => bindTerm(term)) };
      case "method":
        return {
          op: "method",
          method: findMethod(methods, op.method),
          step: op.step,
          params: op.params,
          arithmetic: op.arithmetic,
          seed: op.seed,
          args: op.args.map(bind),
        };
    }
  };
  const bindTerm = (term: LoraTermPlan): BoundLoraTerm => {
    const up = sourceTensor(sources, term.up.source, term.up.key, term.up.dtype);
    const down = sourceTensor(sources, term.down.source, term.down.key, term.down.dtype);
    const rows = planned.shape[0] ?? 1;
    const cols = elementCount(planned.shape.slice(1));
    const { first, count } = term.rows ?? { first: 0, count: rows };
    if (elementCount(up.shape) !== count * term.rank || elementCount(down.shape) !== term.rank * cols) {
      throw new GyozaError(
        "usage",
        `the plan adds ${term.module} (up [${up.shape}], down [${down.shape}]) to ${count} rows of ${cols} columns of ${planned.key}, which it does not fit`,
        { fix: "plan again: the plan was made from other files" },
      );
    }
    return { up, down, rank: term.rank, cols, first, count, multiplier: term.multiplier };
  };
  return bind(planned.op);
}

function sourceTensor(sources: PlanSources, source: string, key: string, dtype: string): StoredTensor {
  const tensor = sources.get(source)?.get(key);
  if (!tensor || tensor.dtype !== dtype) {
    throw new GyozaError(
      "usage",
      `the plan reads ${key} (${dtype}) from "${source}", which does not hold it`,
      {
        fix: "plan again: the plan was made from other files",
      },
    );
  }
  return tensor;
}

/** Whether every method below `op` may work on sub-ranges of the tensor (kernel ops always can). */
export function isElementwise(op: BoundOp): boolean {
  if (op.op === "read") return true;
  if (op.op === "method" && op.method.granularity !== "elementwise") return false;
  return op.args.every(isElementwise);
}
