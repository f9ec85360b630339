/**
 * What a merge method is: an id users write in recipes, typed inputs, parameters with defaults and
 * ranges (the same schema drives CLI help and web forms), a reference, and a pure kernel over
 * already-resolved numbers. Kernels never see files, blocks or recipes.
 */
export type MergeSpace = "weight" | "delta";

export interface MethodParam {
  name: string;
  default: number;
  min?: number;
  max?: number;
  description: string;
  /** True when the value may differ per block (an MBW vector); false for whole-model settings. */
  perBlock: boolean;
  /**
   * True for mixing weights: 0..1 moves between the inputs, anything outside extrapolates past
   * them. Legitimate but rare, so a recipe must say `extrapolate: true` (CLI: --allow-extrapolation).
   */
  interpolates?: boolean;
}

/** Kernel ops: computed by every kernel (native, wasm, TS) bit for bit like a method's `apply`. */
export type KernelOpName = "weighted-sum" | "lerp" | "add-difference";

/**
 * Planning rewrites a method's ops may take part in (implemented in src/plan/fusions.ts, which
 * matches plan shapes): "nested-weighted-sum" turns a weighted sum over a weighted sum of two reads
 * and a read into one kernel pass.
 */
export type FusionName = "nested-weighted-sum";

export interface MethodInput {
  name: string;
  space: MergeSpace;
}

export interface MethodContext {
  /** Checkpoint key of the tensor being merged. */
  key: string;
  /** "fp32": every product and sum rounded to f32; "lerp": supermerger's torch.lerp formula. */
  arithmetic: "fp32" | "lerp";
  /** Recipe seed, for methods that draw random numbers (DARE). */
  seed: number;
  /** Index of inputs[i][0] within the whole tensor, for counter-based random numbers. */
  elementOffset: number;
  /** Shape of the whole tensor; tensor-granularity methods reduce along it (cosine merges). */
  shape: readonly number[];
}

export interface MergeMethod {
  /** snake_case, as users write it in recipes. */
  id: string;
  summary: string;
  /** Link to the paper or tool source the kernel matches. */
  reference: string;
  inputs: readonly MethodInput[];
  output: MergeSpace;
  params: readonly MethodParam[];
  /** "elementwise" may be applied to any sub-range of a tensor; "tensor" needs the whole tensor at once. */
  granularity: "elementwise" | "tensor";
  apply(
    inputs: readonly Float32Array[],
    params: Readonly<Record<string, number>>,
    out: Float32Array,
    context: MethodContext,
  ): void;
  /** Whole-model statistics to gather before merging; absent for most methods. */
  prepass?: MethodPrepass;
  /**
   * The kernel op this method runs as in an arithmetic mode, where the kernels implement it bit for
   * bit like `apply` (the kernels-agree and engine tests hold them to it); undefined: `apply` runs.
   */
  kernelOp?(arithmetic: "fp32" | "lerp"): KernelOpName | undefined;
  /** Fusions the planner may apply to this method's ops. */
  fusions?: readonly FusionName[];
  /**
   * True for a method that bakes the step's LoRAs (`loras:` in the recipe) into its one input: the
   * planner gives every key a LoRA changes an `add-lora` op (`W + Σ ratio·block weight·scale·up @ down`,
   * computed by the kernels' low-rank update) and copies every other key; `apply` is the identity.
   */
  bakesLoras?: boolean;
}

/**
 * A pass over the whole model before any tensor is merged (supermerger's cosine merges normalise
 * by the similarity range of all keys). The engine calls `measure` on the whole tensors of every
 * key `includes` accepts, then merges with `finish`'s values in place of the named parameters.
 */
export interface MethodPrepass {
  includes(key: string): boolean;
  measure(inputs: readonly Float32Array[], context: MethodContext): Float64Array;
  finish(measurements: readonly Float64Array[]): Readonly<Record<string, number>>;
}

/** Lookup of methods by id; a value passed to whoever needs it, never a global. */
export type MethodRegistry = ReadonlyMap<string, MergeMethod>;

/** Shorthand used by the kernels: round a double to the nearest f32 (ties to even). */
export const f32: (value: number) => number = Math.fround;
