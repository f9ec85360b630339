import type { DType } from "../io/dtype.js";

/**
 * What a merge will do, decided from headers alone before any tensor byte is read: every output
 * key with its shape, dtype and the op that computes it from named source tensors, plus the
 * finishing decisions. A plain, frozen, JSON-serialisable value: `gyoza merge … --plan` prints it,
 * two plans of the same recipe and inputs are deep-equal, and `stream/` runs it without ever
 * looking at a method id.
 */
export interface MergePlan {
  readonly schema: "gyoza.plan/1";
  /** Architecture id of the first input (sd1, sdxl …) and the block-weight family it merges as. */
  readonly architecture: string;
  readonly family: string;
  /** Source name → file. Recipe inputs by their names; a baked VAE as `@vae`. */
  readonly sources: Readonly<Record<string, string>>;
  /** The recipe's steps in dependency order, the output step last among those it needs. */
  readonly steps: readonly PlanStepSummary[];
  readonly output: PlanOutput;
  readonly keys: readonly PlanKey[];
  readonly finishing: PlanFinishing;
  /** Per step: keys its first input lacks, taken from a later one ("keys only in B"). */
  readonly onlyInLaterInputs: readonly {
    readonly key: string;
    readonly step: string;
    readonly from: string;
  }[];
  /** The LoRAs add_lora steps bake in, in the order they are applied. */
  readonly loras: readonly PlanLora[];
  /** What the user should know that does not stop the merge (a LoRA without alpha …). */
  readonly warnings: readonly PlanWarning[];
}

export interface PlanWarning {
  readonly code: string;
  readonly message: string;
}

/** One LoRA of an add_lora step: where it comes from and what it changes, slot by slot. */
export interface PlanLora {
  readonly step: string;
  /** The recipe input whose file it is (a source of the plan). */
  readonly source: string;
  /** The base model it was trained for, as its shapes (or metadata) say. */
  readonly base: string;
  readonly ratio: number;
  /** The block weights as written ("ALL" when none were). */
  readonly weights: string;
  readonly modules: number;
  readonly ranks: readonly number[];
  /** Modules without an alpha (taken as their rank, as kohya does). */
  readonly alphaMissing: number;
  /** Per slot (null: UNet keys outside every block): ratio · block weight, and how many modules take it. */
  readonly slots: readonly {
    readonly slot: string | null;
    readonly weight: number;
    readonly modules: number;
  }[];
}

/**
 * One LoRA module's change to a weight: `multiplier · (up @ down)` added to rows [first, first +
 * count) (the whole weight unless it is OpenCLIP's packed q/k/v), up read as [count, rank], down as
 * [rank, columns of the weight].
 */
export interface LoraTermPlan {
  readonly source: string;
  readonly module: string;
  readonly up: ReadOp;
  readonly down: ReadOp;
  readonly rank: number;
  readonly rows: { readonly first: number; readonly count: number } | null;
  readonly ratio: number;
  /** LoRA Block Weight of the key's slot. */
  readonly blockWeight: number;
  readonly alpha: number;
  /** alpha / rank. */
  readonly scale: number;
  /** ratio · blockWeight · scale, in double precision; the kernel rounds it to f32 once. */
  readonly multiplier: number;
}

export interface PlanStepSummary {
  readonly name: string;
  readonly method: string;
  /** Node names (sources or earlier steps) in the method's input order. */
  readonly inputs: readonly string[];
  readonly arithmetic: "fp32" | "lerp";
}

export interface PlanOutput {
  readonly path: string;
  readonly format: "safetensors" | "ckpt";
  /** The float dtype asked for; null keeps each tensor's own. */
  readonly dtype: DType | null;
}

export interface PlanKey {
  readonly key: string;
  readonly shape: readonly number[];
  /** The dtype written. */
  readonly dtype: DType;
  readonly op: PlanOp;
}

/** A stored tensor of one source, as its header describes it. */
export interface ReadOp {
  readonly op: "read";
  readonly source: string;
  /** The key inside that source (a baked VAE's `decoder.…` for `first_stage_model.decoder.…`). */
  readonly key: string;
  readonly dtype: DType;
}

/** Where a merged value sits: the step that merges it and the block slot its weight came from. */
interface StepOrigin {
  readonly step: string;
  readonly slot: string | null;
}

/**
 * The ops `stream/` runs. The kernel ops are bit-identical to the method files that declare them
 * (engine and kernels-agree tests); `method` calls a method's own whole-range function.
 */
export type PlanOp =
  | ReadOp
  /** int64 `arange(77)` of shape [1, 77]: CLIP position_ids as every loader expects them. */
  | { readonly op: "arange"; readonly length: number }
  /** torch's fp32 weighted sum `(1 − α)·A + α·B` (weighted_sum, arithmetic fp32). */
  | (StepOrigin & {
      readonly op: "weighted-sum";
      readonly alpha: number;
      readonly args: readonly [PlanOp, PlanOp];
    })
  /** supermerger's `torch.lerp(A, B, α)` in fp32 (weighted_sum, arithmetic lerp). */
  | (StepOrigin & { readonly op: "lerp"; readonly alpha: number; readonly args: readonly [PlanOp, PlanOp] })
  /** `A + α(B − C)` in fp32 (add_difference). */
  | (StepOrigin & {
      readonly op: "add-difference";
      readonly alpha: number;
      readonly args: readonly [PlanOp, PlanOp, PlanOp];
    })
  /**
   * A weighted sum over a weighted sum of two reads and a read, in one kernel pass (GyozaMix's two
   * steps): `inner = (1 − innerAlpha)·args[0] + innerAlpha·args[1]`, then the outer sum of `inner`
   * and `args[2]` with `alpha`, `inner` being the outer sum's first operand when `innerFirst`.
   */
  | (StepOrigin & {
      readonly op: "nested-weighted-sum";
      readonly innerStep: string;
      readonly innerAlpha: number;
      readonly alpha: number;
      readonly innerFirst: boolean;
      readonly args: readonly [ReadOp, ReadOp, ReadOp];
    })
  /**
   * LoRAs baked into a weight (add_lora): `args[0] + multiplier · (up @ down)` for each term in order,
   * in f32 (the kernels' low-rank update); `slot` is the LoRA Block Weight slot of the key.
   */
  | (StepOrigin & {
      readonly op: "add-lora";
      readonly args: readonly [PlanOp];
      readonly terms: readonly LoraTermPlan[];
    })
  /** Any other method: its id (to find its function), resolved numeric parameters and settings. */
  | (StepOrigin & {
      readonly op: "method";
      readonly method: string;
      readonly params: Readonly<Record<string, number>>;
      readonly arithmetic: "fp32" | "lerp";
      readonly seed: number;
      /** "elementwise" methods run on sub-ranges; "tensor" methods need whole tensors. */
      readonly granularity: "elementwise" | "tensor";
      readonly args: readonly PlanOp[];
    });

/** The op kinds that combine other ops. */
export type CombiningOp = Exclude<PlanOp, ReadOp | { op: "arange" }>;

export interface PlanFinishing {
  /** Keys dropped by pruning (EMA copies, keys outside the architecture's layout). */
  readonly pruned: readonly string[];
  /** position_ids written as int64 arange(77). */
  readonly positionIdsReset: readonly string[];
  /** What happened to the VAE: kept from a source, baked from a file, or merged by weight. */
  readonly vae: {
    readonly policy: "keep" | "bake" | "merge" | "none";
    readonly from: string | null;
    readonly keys: number;
  };
}

/** Deep-freezes a plan (or any plain value) so nothing downstream can change a decision. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value as object)) deepFreeze(item);
  }
  return value;
}

/** Every op below `op`, itself included, depth first. */
export function* opsOf(op: PlanOp): Generator<PlanOp> {
  yield op;
  if ("args" in op) for (const arg of op.args) yield* opsOf(arg);
}

/** The first read below `op` (its dtype and shape describe the output by default). */
export function firstRead(op: PlanOp): ReadOp | undefined {
  for (const node of opsOf(op)) if (node.op === "read") return node;
  return undefined;
}
