import { readStreamed } from "../io/byte-source.js";
import { type DType, dtypeBytes, elementCount } from "../io/dtype.js";
import { decodeToFloat32, encodeFromFloat32 } from "../io/float-convert.js";
import { readTensorBytes } from "../io/read-tensor.js";
import type { StoredTensor } from "../io/tensor.js";
import type { EncodedArray, FloatDType, LowRankFactors, MergeKernel } from "../kernels/merge-kernel.js";
import { KERNEL_DTYPES } from "../kernels/merge-kernel.js";
import { type BoundLoraTerm, type BoundOp, type BoundRead, isElementwise } from "./bind-plan.js";
import type { BufferPool } from "./buffer-pool.js";
import { convertedChunks, float32View } from "./convert-bytes.js";
import { factorBytes, loadLoraFactors, loraTermsOf } from "./lora-factors.js";
import type { DeferredChunk, PendingChunk } from "./write-output.js";

/** Elements per step when streaming a merged tensor: 1 Mi elements = 2 MiB of f16, 4 MiB of f32 per buffer (2 Mi measured no faster, 17 MB more peak RSS). */
export const MERGE_CHUNK_ELEMENTS = 1 << 20;

export interface KeyStats {
  /** Output elements that are NaN or ±Inf. */
  nonFinite: number;
}

/** Whole-model values a step's pre-pass measured (cosine merges' similarity range), by step name. */
export type PrepassParams = ReadonlyMap<string, Readonly<Record<string, number>>>;

/**
 * The output bytes of one key in `outDtype`, chunk by chunk; taking a chunk starts its reads.
 * Elementwise ops stream in ranges of MERGE_CHUNK_ELEMENTS, each computed only when the writer has
 * room for it, straight into the write block (a DeferredChunk); ops with a whole-tensor method
 * (cosine, TIES, slerp…) read and compute whole tensors. Dispatch is on the op kinds the planner
 * chose, never on method ids.
 */
export function* evaluateOp(
  planned: { readonly key: string; readonly shape: readonly number[]; readonly op: BoundOp },
  outDtype: DType,
  kernel: MergeKernel,
  stats: KeyStats,
  prepass: PrepassParams = new Map(),
  pool?: BufferPool,
  chunkElements = MERGE_CHUNK_ELEMENTS,
): Generator<PendingChunk> {
  const plan = planned.op;
  if (plan.op === "read") {
    yield* convertedChunks(plan.tensor, outDtype, kernel, pool);
    return;
  }
  const total = elementCount(planned.shape);
  const elementwise = isElementwise(plan);
  const step = elementwise ? chunkElements : Math.max(total, 1);
  const wholeTensors = new Map<StoredTensor, Promise<Uint8Array>>();
  // LoRA factors: read whole once per key, given back when its last range is computed
  const terms = loraTermsOf(plan);
  const factors = terms.length > 0 ? loadLoraFactors(terms, kernel, pool) : undefined;
  let rangesLeft = Math.ceil(total / step);
  const rangeDone = () => {
    if (--rangesLeft === 0) void factors?.then((loaded) => loaded.release());
  };
  for (let begin = 0; begin < total; begin += step) {
    const count = Math.min(total, begin + step) - begin;
    const reading = readLeaves(plan, begin, begin + count, wholeTensors, pool);
    const holds = leafBytes(plan, count) + (begin === 0 ? factorBytes(terms) : 0);
    yield {
      holds,
      ready: Promise.all([reading, factors]).then(([reads, loaded]) => {
        const range = {
          key: planned.key,
          plan,
          reads,
          begin,
          kernel,
          shape: planned.shape,
          prepass,
          pool,
          factors: loaded?.byTerm,
          done: rangeDone,
        };
        if (elementwise) return deferredRange(range, count, outDtype, stats);
        const out = computeWhole(range, count, outDtype);
        if (pool) for (const bytes of reads.values()) pool.release(bytes);
        rangeDone();
        stats.nonFinite += countNonFinite(out, outDtype, kernel);
        return out;
      }),
    };
  }
}

/** Bytes the reads of `count` elements of every leaf take. */
function leafBytes(plan: BoundOp, count: number): number {
  if (plan.op === "read") return count * dtypeBytes(plan.tensor.dtype);
  return plan.args.reduce((sum: number, arg: BoundOp) => sum + leafBytes(arg, count), 0);
}

/** Reads every leaf's bytes for elements [begin, end) concurrently (one read per distinct tensor). */
export async function readLeaves(
  plan: BoundOp,
  begin: number,
  end: number,
  wholeTensors: Map<StoredTensor, Promise<Uint8Array>>,
  pool?: BufferPool,
): Promise<Map<StoredTensor, Uint8Array>> {
  const leaves = new Set<StoredTensor>();
  const collect = (node: BoundOp) => {
    if (node.op === "read") leaves.add(node.tensor);
    else node.args.forEach(collect);
  };
  collect(plan);
  const entries = await Promise.all(
    [...leaves].map(async (tensor) => {
      const size = dtypeBytes(tensor.dtype);
      if (tensor.strides) {
        let whole = wholeTensors.get(tensor);
        if (!whole) {
          whole = readTensorBytes(tensor);
          wholeTensors.set(tensor, whole);
        }
        return [tensor, (await whole).subarray(begin * size, end * size)] as const;
      }
      const length = (end - begin) * size;
      const position = tensor.byteOffset + begin * size;
      const bytes = pool
        ? await readStreamed(tensor.source, position, length, pool)
        : await tensor.source.read(position, length);
      return [tensor, bytes] as const;
    }),
  );
  return new Map(entries);
}

/** A range of one key's elements with its inputs read: what computing it needs. */
interface ReadRange {
  key: string;
  plan: CombiningBoundOp;
  reads: Map<StoredTensor, Uint8Array>;
  /** The range's first element within the tensor. */
  begin: number;
  kernel: MergeKernel;
  shape: readonly number[];
  prepass: PrepassParams;
  pool: BufferPool | undefined;
  /** The key's LoRA factors (add-lora ops), when it has any. */
  factors: ReadonlyMap<BoundLoraTerm, LowRankFactors> | undefined;
  /** Called once the range is computed and its reads given back. */
  done: () => void;
}

/** An elementwise range, computed into whatever part of the output the writer hands over. */
function deferredRange(range: ReadRange, count: number, outDtype: DType, stats: KeyStats): DeferredChunk {
  const outSize = dtypeBytes(outDtype);
  return {
    byteLength: count * outSize,
    elementBytes: outSize,
    fill(target, offset) {
      computeElementwise(range, offset / outSize, target.byteLength / outSize, outDtype, target);
      stats.nonFinite += countNonFinite(target, outDtype, range.kernel);
    },
    release() {
      if (range.pool) for (const bytes of range.reads.values()) range.pool.release(bytes);
      range.done();
    },
  };
}

/**
 * Elements [at, at + count) of an elementwise range (relative to its first element) into `out`.
 * Results do not depend on how a range is split: every method here is elementwise.
 */
function computeElementwise(
  range: ReadRange,
  at: number,
  count: number,
  outDtype: DType,
  out: Uint8Array,
): void {
  const { plan, reads, pool } = range;
  // One context for every piece, its reads re-pointed piece by piece: per-piece objects, allocated
  // tens of thousands of times per model, would be promoted out of V8's young generation (tens of MB).
  const pieceReads = new Map<StoredTensor, Uint8Array>();
  const context: Mutable<RangeContext> = {
    key: range.key,
    reads: pieceReads,
    begin: 0,
    count: 0,
    kernel: range.kernel,
    shape: range.shape,
    prepass: range.prepass,
    factors: range.factors,
    allocateF32: (n) => new Float32Array(n),
  };
  const select = (from: number, n: number) => {
    for (const [tensor, bytes] of reads) {
      const size = dtypeBytes(tensor.dtype);
      pieceReads.set(tensor, bytes.subarray(from * size, (from + n) * size));
    }
    context.begin = range.begin + from;
    context.count = n;
    return context;
  };
  // Fast paths: a weighted sum of two reads, or the nested weighted sum the planner fused (GyozaMix's
  // two steps), straight from and to 16/32-bit floats in one kernel call over the whole range (which
  // the wasm kernel may split across two threads), with no f32 intermediate in memory.
  if (KERNEL_DTYPES.has(outDtype)) {
    if (plan.op === "weighted-sum" && plan.args.every(isKernelRead)) {
      fusedWeightedSum(plan, select(at, count), out, outDtype as FloatDType);
      return;
    }
    if (plan.op === "nested-weighted-sum") {
      nestedWeightedSum(plan, select(at, count), out, outDtype as FloatDType);
      return;
    }
  }
  // Piece by piece: the f32 intermediates of a multi-step recipe stay in the CPU cache instead of
  // streaming several multi-MiB arrays through memory per chunk.
  const scratch = new PieceScratch(pool);
  context.allocateF32 = scratch.allocate;
  const outSize = dtypeBytes(outDtype);
  try {
    for (let done = 0; done < count; done += PIECE_ELEMENTS) {
      const n = Math.min(PIECE_ELEMENTS, count - done);
      scratch.reset();
      const piece = select(at + done, n);
      const target = out.subarray(done * outSize, (done + n) * outSize);
      if (plan.op === "weighted-sum" && KERNEL_DTYPES.has(outDtype))
        fusedWeightedSum(plan, piece, target, outDtype as FloatDType);
      else encodeInto(evaluateNode(plan, piece), outDtype, range.kernel, target);
    }
  } finally {
    scratch.dispose();
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A whole-tensor method's output: intermediate f32 values come from the pool; all but the one
 * returned go back after encoding.
 */
function computeWhole(range: ReadRange, count: number, outDtype: DType): Uint8Array {
  const { pool, kernel } = range;
  const allocate = (bytes: number) => (pool ? pool.acquire(bytes) : Buffer.allocUnsafeSlow(bytes));
  const scratch: Uint8Array[] = [];
  const allocateF32 = (elements: number) => {
    const bytes = allocate(elements * 4);
    scratch.push(bytes);
    return new Float32Array(bytes.buffer, bytes.byteOffset, elements);
  };
  const values = evaluateNode(range.plan, { ...range, count, allocateF32 });
  let out: Uint8Array;
  if (outDtype === "F32") out = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  else if (KERNEL_DTYPES.has(outDtype)) {
    out = allocate(count * dtypeBytes(outDtype)); // fully written by the kernel
    kernel.fromFloat32(values, outDtype as FloatDType, out);
  } else out = encodeFromFloat32(values, outDtype);
  for (const bytes of scratch) {
    if (bytes.buffer === out.buffer && bytes.byteOffset === out.byteOffset) out = bytes;
    else pool?.release(bytes);
  }
  return out;
}

/** Elements of an elementwise plan evaluated at a time: 16 Ki elements, 64 KiB per f32 array. */
export const PIECE_ELEMENTS = 1 << 14;

/**
 * f32 arrays for one piece, handed out in order and all reused by the next piece. From the pool
 * when there is one (in the wasm kernel's memory, where it works on them without copies).
 */
class PieceScratch {
  private readonly arrays: Float32Array[] = [];
  private readonly pooled: Uint8Array[] = [];
  private used = 0;

  constructor(private readonly pool?: BufferPool) {}

  reset(): void {
    this.used = 0;
  }

  readonly allocate = (elements: number): Float32Array => {
    if (this.used === this.arrays.length) {
      const bytes = this.pool?.acquire(PIECE_ELEMENTS * 4);
      if (bytes) this.pooled.push(bytes);
      this.arrays.push(bytes ? float32View(bytes) : new Float32Array(PIECE_ELEMENTS));
    }
    return this.arrays[this.used++]!.subarray(0, elements);
  };

  /** Gives pooled arrays back; none may be used after. */
  dispose(): void {
    for (const bytes of this.pooled) this.pool?.release(bytes);
  }
}

/** Stores f32 values into `out` (exactly values.length elements of `dtype`). */
function encodeInto(values: Float32Array, dtype: DType, kernel: MergeKernel, out: Uint8Array): void {
  if (dtype === "F32") out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  else if (KERNEL_DTYPES.has(dtype)) kernel.fromFloat32(values, dtype as FloatDType, out);
  else out.set(encodeFromFloat32(values, dtype));
}

/** One element range of one key, as the plan's nodes are evaluated over it. */
export interface RangeContext {
  readonly key: string;
  /** Each leaf tensor's bytes for the range. */
  readonly reads: ReadonlyMap<StoredTensor, Uint8Array>;
  /** The range's first element within the tensor. */
  readonly begin: number;
  readonly count: number;
  readonly kernel: MergeKernel;
  readonly shape: readonly number[];
  readonly prepass: PrepassParams;
  /** The LoRA factors of the add-lora ops evaluated (`loadLoraFactors`). */
  readonly factors?: ReadonlyMap<BoundLoraTerm, LowRankFactors> | undefined;
  /** Where f32 intermediates come from. */
  readonly allocateF32: (elements: number) => Float32Array;
}

/** A node's values over the context's range, in f32. */
export function evaluateNode(node: BoundOp, context: RangeContext): Float32Array {
  const { key, reads, begin, count, kernel, shape, prepass, allocateF32 } = context;
  if (node.op === "read") {
    const bytes = reads.get(node.tensor)!;
    const dtype = node.tensor.dtype;
    if (dtype === "F32") return float32View(bytes);
    if (dtype === "F16" || dtype === "BF16") {
      const values = allocateF32(count);
      kernel.toFloat32(bytes, dtype, values);
      return values;
    }
    return decodeToFloat32(bytes, dtype);
  }
  const out = allocateF32(count);
  switch (node.op) {
    case "weighted-sum":
      fusedWeightedSum(node, context, bytesOf(out), "F32");
      return out;
    case "nested-weighted-sum":
      nestedWeightedSum(node, context, bytesOf(out), "F32");
      return out;
    case "lerp": {
      const [a, b] = node.args.map((arg) => evaluateNode(arg, context));
      kernel.lerpF32(a!, b!, node.alpha, out);
      return out;
    }
    case "add-difference": {
      const [a, b, c] = node.args.map((arg) => evaluateNode(arg, context));
      kernel.addDifferenceF32(a!, b!, c!, node.alpha, out);
      return out;
    }
    case "add-lora":
      addLoraTerms(node, evaluateNode(node.args[0], context), context, out);
      return out;
    case "method": {
      const args = node.args.map((arg) => evaluateNode(arg, context));
      const measured = prepass.get(node.step);
      node.method.apply(args, measured ? { ...node.params, ...measured } : node.params, out, {
        key,
        arithmetic: node.arithmetic,
        seed: node.seed,
        elementOffset: begin,
        shape,
      });
      return out;
    }
  }
}

/**
 * `base` plus each LoRA term's low-rank update over the rows of the context's range it covers, term
 * after term in plan order, into `out`, in f32 (kernel.addLowRankF32).
 */
function addLoraTerms(
  node: CombiningBoundOp & { op: "add-lora" },
  base: Float32Array,
  { begin, count, factors, kernel }: RangeContext,
  out: Float32Array,
): void {
  out.set(base);
  for (const term of node.terms) {
    const first = term.first * term.cols;
    const from = Math.max(begin, first);
    const to = Math.min(begin + count, first + term.count * term.cols);
    if (from >= to) continue;
    const loaded = factors?.get(term);
    if (!loaded) throw new Error(`the LoRA factors of ${term.up.key} were not loaded`);
    const part = out.subarray(from - begin, to - begin);
    kernel.addLowRankF32(part, loaded, from - first, term.multiplier, part);
  }
}

/** A merge op (anything but a read) as bound to tensors and methods. */
type CombiningBoundOp = Exclude<BoundOp, BoundRead>;

function isKernelRead(node: BoundOp): node is BoundRead {
  return node.op === "read" && KERNEL_DTYPES.has(node.tensor.dtype);
}

/**
 * Decodes, weights and adds in one kernel pass into `out` (in `outDtype`): the same bits as
 * toFloat32 → weightedSumF32 → fromFloat32. Each operand goes in as stored when the kernel decodes
 * its dtype, else as f32 values evaluated first.
 */
function fusedWeightedSum(
  node: CombiningBoundOp & { op: "weighted-sum" },
  context: RangeContext,
  out: Uint8Array,
  outDtype: FloatDType,
): void {
  const [a, b] = node.args.map((arg): { bytes: Uint8Array; dtype: FloatDType } =>
    arg.op === "read" && KERNEL_DTYPES.has(arg.tensor.dtype)
      ? { bytes: context.reads.get(arg.tensor)!, dtype: arg.tensor.dtype as FloatDType }
      : { bytes: bytesOf(evaluateNode(arg, context)), dtype: "F32" },
  );
  context.kernel.weightedSum(a!.bytes, a!.dtype, b!.bytes, b!.dtype, node.alpha, out, outDtype);
}

/** The planner's fused GyozaMix sum: one kernel pass from three stored operands into `out`. */
function nestedWeightedSum(
  node: CombiningBoundOp & { op: "nested-weighted-sum" },
  context: RangeContext,
  out: Uint8Array,
  outDtype: FloatDType,
): void {
  const operand = (read: BoundRead): EncodedArray => ({
    bytes: context.reads.get(read.tensor)!,
    dtype: read.tensor.dtype as FloatDType,
  });
  const [a, b, other] = node.args;
  context.kernel.nestedWeightedSum(
    operand(a),
    operand(b),
    node.innerAlpha,
    operand(other),
    node.alpha,
    node.innerFirst,
    { bytes: out, dtype: outDtype },
  );
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** NaN and ±Inf in encoded output (all-ones exponent): the kernel's SIMD count for kernel dtypes. */
export function countNonFinite(bytes: Uint8Array, dtype: DType, kernel: MergeKernel): number {
  if (KERNEL_DTYPES.has(dtype)) return kernel.countNonFinite(bytes, dtype as FloatDType);
  if (dtype !== "F64") return 0; // integers and booleans are always finite
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  for (let at = 0; at + 8 <= bytes.byteLength; at += 8)
    if (!Number.isFinite(view.getFloat64(at, true))) count++;
  return count;
}
