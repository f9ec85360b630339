import { GyozaError } from "../errors.js";

/**
 * The elementwise arithmetic every merge method bottoms out in, in three interchangeable
 * implementations that agree bit for bit: a native addon (AVX2 + F16C), WebAssembly SIMD and
 * plain TypeScript (the reference). Semantics follow DOMAIN.md §3 "Arithmetic":
 *
 * - everything is computed in f32, each operation rounded to f32 separately, never fused, except lerp;
 * - weighted sum: `w0 = f32(1 − α)` (1 − α in double), `w1 = f32(α)`, `r = f32(f32(A·w0) + f32(B·w1))`,
 *   which equals torch's `((1 − a) * A.float() + a * B.float())`;
 * - lerp: torch.lerp in f32 as its CPU kernel computes it (aten/src/ATen/native/cpu/LerpKernel.cpp,
 *   `lerp_vec`): `|w| < 0.5 ? fma(w, f32(b − a), a) : fma(f32(w − 1), f32(b − a), b)` with a fused
 *   multiply-add (one rounding). torch's scalar formula `b − (b − a)(1 − w)` rounds twice and differs
 *   in a third of the elements of a random test at w = 0.3; checked against torch 1.13 (matches-torch.test.ts);
 * - add difference: `r = f32(A + f32(f32(α) · f32(B − C)))`;
 * - nested weighted sum: a weighted sum of a weighted sum and C, the inner sum kept in f32 between the
 *   two, exactly as if it were computed into an f32 array first;
 * - low-rank update (a LoRA baked in): element (i, j) of `base + m·(up @ down)` is
 *   `f32(base + f32(f32(m) · s))` with `s` the sum over k = 0, 1, … of `f32(up[i,k] · down[k,j])`, each
 *   addition rounded to f32, starting from +0. torch's fp32 matmul sums in blocks, in another order
 *   (and fused on some CPUs), so it differs from this in the last bits of `s`: well below fp16 rounding;
 * - storing rounds to nearest even exactly like src/io/float-convert.ts.
 *
 * NaN: a NaN produced by the arithmetic is stored as the canonical quiet NaN 0x7fc00000 (f16 0x7e00,
 * bf16 0x7fc0), whatever its inputs, so results do not depend on how a CPU propagates NaN payloads.
 * Decoding an f16 NaN quiets it (0x7c01 → 0x7fc02000), like F16C and like V8's float loads do.
 */

export type KernelName = "native" | "wasm" | "js";
export type FloatDType = "F16" | "BF16" | "F32";

/** The dtypes every kernel decodes and encodes itself (others go through the TS converters). */
export const KERNEL_DTYPES: ReadonlySet<string> = new Set<FloatDType>(["F16", "BF16", "F32"]);

export const KERNEL_NAMES: readonly KernelName[] = ["native", "wasm", "js"];
export const FLOAT_DTYPES: readonly FloatDType[] = ["F16", "BF16", "F32"];

/** Bit pattern of the one NaN the arithmetic produces. */
export const CANONICAL_NAN_BITS = 0x7fc00000;

export interface MergeKernel {
  readonly name: KernelName;
  /** Decodes little-endian `dtype` elements into f32 (exact). */
  toFloat32(src: Uint8Array, dtype: FloatDType, out: Float32Array): void;
  /** Encodes f32 values as `dtype`, rounding to nearest even. */
  fromFloat32(src: Float32Array, dtype: FloatDType, out: Uint8Array): void;
  weightedSumF32(a: Float32Array, b: Float32Array, alpha: number, out: Float32Array): void;
  lerpF32(a: Float32Array, b: Float32Array, weight: number, out: Float32Array): void;
  addDifferenceF32(a: Float32Array, b: Float32Array, c: Float32Array, alpha: number, out: Float32Array): void;
  /** Fused fast path: a, b in their dtypes → out in its dtype, no intermediate buffers. */
  weightedSum(
    a: Uint8Array,
    aType: FloatDType,
    b: Uint8Array,
    bType: FloatDType,
    alpha: number,
    out: Uint8Array,
    outType: FloatDType,
  ): void;
  /**
   * A weighted sum with a weighted sum as one operand, in one pass: `inner = weightedSum(a, b, alpha)`
   * (in f32), then `weightedSum(inner, c, beta)`, or `weightedSum(c, inner, beta)` when `innerFirst`
   * is false, stored as `out.dtype`. The same bits as the two steps one after the other.
   */
  nestedWeightedSum(
    a: EncodedArray,
    b: EncodedArray,
    alpha: number,
    c: EncodedArray,
    beta: number,
    innerFirst: boolean,
    out: EncodedArray,
  ): void;
  /** Elements of little-endian `dtype` bytes that are NaN or ±Inf (all-ones exponent). */
  countNonFinite(bytes: Uint8Array, dtype: FloatDType): number;
  /**
   * Elements [begin, begin + out.length) of the row-major matrix `base + multiplier · (up @ down)` into
   * `out` (`base` holds the same elements; `out` may be `base`). Works on the kernel's memory in place
   * (`allocate`) like the other calls; factors held elsewhere are copied in for the call.
   */
  addLowRankF32(
    base: Float32Array,
    factors: LowRankFactors,
    begin: number,
    multiplier: number,
    out: Float32Array,
  ): void;
  /**
   * Shared memory the kernel works on in place (the wasm kernel's own; other buffers it copies in
   * and out), or undefined when it has none left. Absent for kernels that work on any memory.
   */
  readonly allocate?: (bytes: number) => Buffer | undefined;
  /** Gives back a buffer from `allocate` for reuse; it must not be used after. */
  readonly free?: (buffer: Buffer) => void;
  /**
   * Copies `source` into `target` (same length) at memory speed whatever their alignment: V8 copies
   * between shared buffers with relaxed atomics, byte by byte when the two are unequally aligned.
   */
  readonly copy?: (target: Uint8Array, source: Uint8Array) => void;
}

/** The two factors of a low-rank update of a [rows, cols] matrix, in f32. */
export interface LowRankFactors {
  /** [rows, rank], row-major. */
  readonly up: Float32Array;
  /** [rank, cols], row-major, its rows `stride` elements apart (see lowRankStride). */
  readonly down: Float32Array;
  readonly rank: number;
  readonly cols: number;
  readonly stride: number;
}

/**
 * The row stride to store a low-rank update's down factor with: its columns plus 16 floats (64
 * bytes). The SIMD kernels read one column block of all rank rows at a time; rows exactly a multiple
 * of 4 KiB apart (3072 or 5120 floats: CLIP's fc2, SD's ff.net.2) would all fall into one cache set,
 * halving the speed; 64 more bytes put consecutive rows in consecutive sets.
 */
export function lowRankStride(cols: number): number {
  return cols + 16;
}

/** Elements of one dtype, little-endian. */
export interface EncodedArray {
  readonly bytes: Uint8Array;
  readonly dtype: FloatDType;
}

/**
 * The f32 weights of a nested weighted sum: `inner = a·w0 + b·w1`, `out = inner·u + c·v` (each
 * product and sum rounded on its own). f32 addition is commutative, so the outer step's operand order
 * only decides which of its weights is `u`.
 */
export interface NestedWeights {
  readonly w0: number;
  readonly w1: number;
  readonly u: number;
  readonly v: number;
}

/**
 * What an implementation provides: the same operations with arguments already checked and the
 * scalar weights already rounded to f32 (so every implementation sees the very same weights).
 */
export interface KernelBackend {
  readonly name: KernelName;
  toFloat32(src: Uint8Array, dtype: FloatDType, out: Float32Array): void;
  fromFloat32(src: Float32Array, dtype: FloatDType, out: Uint8Array): void;
  weightedSumF32(a: Float32Array, b: Float32Array, w0: number, w1: number, out: Float32Array): void;
  lerpF32(a: Float32Array, b: Float32Array, weight: number, out: Float32Array): void;
  addDifferenceF32(a: Float32Array, b: Float32Array, c: Float32Array, alpha: number, out: Float32Array): void;
  weightedSum(
    a: Uint8Array,
    aType: FloatDType,
    b: Uint8Array,
    bType: FloatDType,
    w0: number,
    w1: number,
    out: Uint8Array,
    outType: FloatDType,
  ): void;
  nestedWeightedSum(
    a: EncodedArray,
    b: EncodedArray,
    c: EncodedArray,
    weights: NestedWeights,
    out: EncodedArray,
  ): void;
  countNonFinite(bytes: Uint8Array, dtype: FloatDType): number;
  /** `multiplier` already rounded to f32; arguments checked (the range lies inside the factors' rows). */
  addLowRankF32(
    base: Float32Array,
    factors: LowRankFactors,
    begin: number,
    multiplier: number,
    out: Float32Array,
  ): void;
  readonly allocate?: (bytes: number) => Buffer | undefined;
  readonly free?: (buffer: Buffer) => void;
  readonly copy?: (target: Uint8Array, source: Uint8Array) => void;
}

export function floatDTypeBytes(dtype: FloatDType): number {
  return dtype === "F32" ? 4 : 2;
}

/** The weighted-sum weights as torch forms them: `(1 − α)` in double, then both rounded to f32. */
export function weightedSumWeights(alpha: number): { w0: number; w1: number } {
  return { w0: Math.fround(1 - alpha), w1: Math.fround(alpha) };
}

/** The nested weighted sum's four f32 weights (see NestedWeights). */
export function nestedWeightedSumWeights(alpha: number, beta: number, innerFirst: boolean): NestedWeights {
  const inner = weightedSumWeights(alpha);
  const outer = weightedSumWeights(beta);
  return innerFirst
    ? { w0: inner.w0, w1: inner.w1, u: outer.w0, v: outer.w1 }
    : { w0: inner.w0, w1: inner.w1, u: outer.w1, v: outer.w0 };
}

/** Wraps a backend with the argument checks and weight rounding shared by all implementations. */
export function createMergeKernel(backend: KernelBackend): MergeKernel {
  return {
    name: backend.name,
    ...(backend.allocate ? { allocate: backend.allocate } : {}),
    ...(backend.free ? { free: backend.free } : {}),
    ...(backend.copy ? { copy: checkedCopy(backend.copy) } : {}),
    toFloat32(src, dtype, out) {
      checkEncoded(src, dtype, out.length, "src");
      backend.toFloat32(src, dtype, out);
    },
    fromFloat32(src, dtype, out) {
      checkEncoded(out, dtype, src.length, "out");
      backend.fromFloat32(src, dtype, out);
    },
    weightedSumF32(a, b, alpha, out) {
      checkSameLength(out.length, [a, b]);
      const { w0, w1 } = weightedSumWeights(alpha);
      backend.weightedSumF32(a, b, w0, w1, out);
    },
    lerpF32(a, b, weight, out) {
      checkSameLength(out.length, [a, b]);
      backend.lerpF32(a, b, Math.fround(weight), out);
    },
    addDifferenceF32(a, b, c, alpha, out) {
      checkSameLength(out.length, [a, b, c]);
      backend.addDifferenceF32(a, b, c, Math.fround(alpha), out);
    },
    weightedSum(a, aType, b, bType, alpha, out, outType) {
      checkDType(aType);
      const count = a.byteLength / floatDTypeBytes(aType);
      checkEncoded(a, aType, count, "a");
      checkEncoded(b, bType, count, "b");
      checkEncoded(out, outType, count, "out");
      const { w0, w1 } = weightedSumWeights(alpha);
      backend.weightedSum(a, aType, b, bType, w0, w1, out, outType);
    },
    nestedWeightedSum(a, b, alpha, c, beta, innerFirst, out) {
      checkDType(a.dtype);
      const count = a.bytes.byteLength / floatDTypeBytes(a.dtype);
      checkEncoded(a.bytes, a.dtype, count, "a");
      checkEncoded(b.bytes, b.dtype, count, "b");
      checkEncoded(c.bytes, c.dtype, count, "c");
      checkEncoded(out.bytes, out.dtype, count, "out");
      backend.nestedWeightedSum(a, b, c, nestedWeightedSumWeights(alpha, beta, innerFirst), out);
    },
    countNonFinite(bytes, dtype) {
      checkDType(dtype);
      const count = bytes.byteLength / floatDTypeBytes(dtype);
      checkEncoded(bytes, dtype, count, "bytes");
      return backend.countNonFinite(bytes, dtype);
    },
    addLowRankF32(base, factors, begin, multiplier, out) {
      checkSameLength(out.length, [base]);
      checkLowRank(factors, begin, out.length);
      if (out.length > 0) backend.addLowRankF32(base, factors, begin, Math.fround(multiplier), out);
    },
  };
}

function checkLowRank({ up, down, rank, cols, stride }: LowRankFactors, begin: number, count: number): void {
  const rows = up.length / rank;
  const fits =
    Number.isInteger(rank) &&
    rank >= 1 &&
    Number.isInteger(cols) &&
    cols >= 1 &&
    Number.isInteger(stride) &&
    stride >= cols &&
    Number.isInteger(rows) &&
    down.length >= (rank - 1) * stride + cols &&
    Number.isInteger(begin) &&
    begin >= 0 &&
    begin + count <= rows * cols;
  if (!fits) {
    throw new GyozaError(
      "usage",
      `low-rank factors up [${up.length} values] and down [${down.length}] of rank ${rank} do not cover elements ${begin}..${begin + count} of ${cols} columns`,
    );
  }
}

function checkedCopy(copy: (target: Uint8Array, source: Uint8Array) => void) {
  return (target: Uint8Array, source: Uint8Array): void => {
    if (target.byteLength !== source.byteLength) {
      throw new GyozaError("usage", `copy of ${source.byteLength} bytes into ${target.byteLength}`);
    }
    copy(target, source);
  };
}

function checkDType(dtype: FloatDType): void {
  if (!FLOAT_DTYPES.includes(dtype)) {
    throw new GyozaError("usage", `merge kernels work on F16, BF16 and F32, not ${String(dtype)}`);
  }
}

function checkEncoded(bytes: Uint8Array, dtype: FloatDType, count: number, role: string): void {
  checkDType(dtype);
  const expected = count * floatDTypeBytes(dtype);
  if (bytes.byteLength !== expected || !Number.isInteger(count)) {
    throw new GyozaError(
      "usage",
      `${role} holds ${bytes.byteLength} bytes but ${count} ${dtype} elements need ${expected}`,
    );
  }
}

function checkSameLength(count: number, inputs: Float32Array[]): void {
  for (const input of inputs) {
    if (input.length !== count) {
      throw new GyozaError("usage", `kernel inputs differ in length: ${input.length} elements vs ${count}`);
    }
  }
}
