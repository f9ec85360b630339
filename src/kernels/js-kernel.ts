import { f16ToF32Table, f32BitsToBf16Bits, f32BitsToF16Bits } from "../io/float-convert.js";
import { fusedMultiplyAddF32 } from "./fused-multiply-add.js";
import {
  CANONICAL_NAN_BITS,
  createMergeKernel,
  type EncodedArray,
  type FloatDType,
  floatDTypeBytes,
  type KernelBackend,
  type MergeKernel,
} from "./merge-kernel.js";

/**
 * The plain-TypeScript reference kernel, built on src/io/float-convert.ts. JavaScript arithmetic is
 * double precision; `Math.fround` after each operation gives exactly the f32 result, because a double
 * holds the exact sum or product of two f32 values before the one rounding (53 ≥ 2·24 + 2 bits).
 */

/** Elements per step of the fused path: scratch buffers stay in cache. */
const CHUNK_ELEMENTS = 16384;

let f16ToF32Bits: Uint32Array | undefined;

/**
 * f16 bit pattern → f32 bit pattern, with NaN quieted (what F16C and V8's float loads give). Built on
 * first use, so that loading the kernels costs no start-up.
 */
function f16ToF32BitsTable(): Uint32Array {
  if (f16ToF32Bits) return f16ToF32Bits;
  const values = f16ToF32Table();
  const table = new Uint32Array(values.buffer, values.byteOffset, 65536);
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const isNotANumber = (h & 0x7fff) > 0x7c00;
    bits[h] = isNotANumber ? (table[h]! | 0x00400000) >>> 0 : table[h]!;
  }
  f16ToF32Bits = bits;
  return bits;
}

export function createJsKernel(): MergeKernel {
  return createMergeKernel(jsBackend);
}

const jsBackend: KernelBackend = {
  name: "js",
  toFloat32: decode,
  fromFloat32: encode,
  weightedSumF32(a, b, w0, w1, out) {
    const outBits = bitsOf(out);
    for (let i = 0; i < out.length; i++) {
      const r = Math.fround(Math.fround(a[i]! * w0) + Math.fround(b[i]! * w1));
      if (Number.isNaN(r)) outBits[i] = CANONICAL_NAN_BITS;
      else out[i] = r;
    }
  },
  lerpF32(a, b, weight, out) {
    // torch's CPU lerp_vec (aten/src/ATen/native/cpu/LerpKernel.cpp): |w| < 0.5 ? fmadd(w, b − a, a)
    // : fmadd(w − 1, b − a, b), the weight and w − 1 rounded to f32, each fmadd rounded once.
    const small = Math.abs(weight) < 0.5;
    const coefficient = small ? weight : Math.fround(weight - 1);
    const outBits = bitsOf(out);
    for (let i = 0; i < out.length; i++) {
      const start = a[i]!;
      const end = b[i]!;
      const r = fusedMultiplyAddF32(coefficient, Math.fround(end - start), small ? start : end);
      if (Number.isNaN(r)) outBits[i] = CANONICAL_NAN_BITS;
      else out[i] = r;
    }
  },
  addDifferenceF32(a, b, c, alpha, out) {
    const outBits = bitsOf(out);
    for (let i = 0; i < out.length; i++) {
      const r = Math.fround(a[i]! + Math.fround(alpha * Math.fround(b[i]! - c[i]!)));
      if (Number.isNaN(r)) outBits[i] = CANONICAL_NAN_BITS;
      else out[i] = r;
    }
  },
  weightedSum(a, aType, b, bType, w0, w1, out, outType) {
    const operands = [
      { bytes: a, dtype: aType },
      { bytes: b, dtype: bType },
    ];
    inChunks(operands, { bytes: out, dtype: outType }, ([x, y]) =>
      jsBackend.weightedSumF32(x!, y!, w0, w1, x!),
    );
  },
  nestedWeightedSum(a, b, c, { w0, w1, u, v }, out) {
    inChunks([a, b, c], out, ([x, y, z]) => {
      jsBackend.weightedSumF32(x!, y!, w0, w1, x!);
      jsBackend.weightedSumF32(x!, z!, u, v, x!);
    });
  },
  countNonFinite,
  addLowRankF32(base, { up, down, rank, cols, stride }, begin, multiplier, out) {
    const outBits = bitsOf(out);
    for (let t = 0; t < out.length; t++) {
      const row = Math.floor((begin + t) / cols);
      const column = begin + t - row * cols;
      let sum = 0;
      for (let k = 0; k < rank; k++)
        sum = Math.fround(sum + Math.fround(up[row * rank + k]! * down[k * stride + column]!));
      const r = Math.fround(base[t]! + Math.fround(multiplier * sum));
      if (Number.isNaN(r)) outBits[t] = CANONICAL_NAN_BITS;
      else out[t] = r;
    }
  },
};

/** The all-ones exponent of each dtype: NaN and ±Inf are exactly the elements with these bits set. */
const EXPONENT_MASKS: Record<FloatDType, number> = { F16: 0x7c00, BF16: 0x7f80, F32: 0x7f800000 };

/** NaN and ±Inf in encoded values; 16-bit types are scanned two at a time. */
function countNonFinite(bytes: Uint8Array, dtype: FloatDType): number {
  const mask = EXPONENT_MASKS[dtype];
  let count = 0;
  if (dtype === "F32") {
    const source = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    const words = new Uint32Array(source.buffer, source.byteOffset, source.byteLength / 4);
    for (let i = 0; i < words.length; i++) if ((words[i]! & mask) === mask) count++;
    return count;
  }
  const halves = halfView(bytes);
  const pairs = halves.byteOffset % 4 === 0 ? halves.length >>> 1 : 0;
  if (pairs > 0) {
    const words = new Uint32Array(halves.buffer, halves.byteOffset, pairs);
    const high = (mask << 16) >>> 0;
    for (let i = 0; i < pairs; i++) {
      const w = words[i]!;
      if ((w & mask) === mask) count++;
      if ((w & high) >>> 0 === high) count++;
    }
  }
  for (let i = pairs * 2; i < halves.length; i++) if ((halves[i]! & mask) === mask) count++;
  return count;
}

/**
 * The fused paths' loop: decodes every operand CHUNK_ELEMENTS at a time into f32 scratch, lets
 * `compute` leave the result in the first scratch array, and encodes that into `out`.
 */
function inChunks(
  operands: readonly EncodedArray[],
  out: EncodedArray,
  compute: (decoded: Float32Array[]) => void,
): void {
  const count = operands[0]!.bytes.byteLength / floatDTypeBytes(operands[0]!.dtype);
  const scratch = operands.map(() => new Float32Array(Math.min(count, CHUNK_ELEMENTS)));
  for (let start = 0; start < count; start += CHUNK_ELEMENTS) {
    const n = Math.min(CHUNK_ELEMENTS, count - start);
    const decoded = operands.map(({ bytes, dtype }, i) => {
      const values = scratch[i]!.subarray(0, n);
      decode(elements(bytes, dtype, start, n), dtype, values);
      return values;
    });
    compute(decoded);
    encode(decoded[0]!, out.dtype, elements(out.bytes, out.dtype, start, n));
  }
}

function elements(bytes: Uint8Array, dtype: FloatDType, start: number, count: number): Uint8Array {
  const size = floatDTypeBytes(dtype);
  return bytes.subarray(start * size, (start + count) * size);
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

function decode(src: Uint8Array, dtype: FloatDType, out: Float32Array): void {
  if (dtype === "F32") {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(src);
    return;
  }
  const halves = halfView(src);
  const outBits = bitsOf(out);
  if (dtype === "F16") {
    const table = f16ToF32BitsTable();
    for (let i = 0; i < halves.length; i++) outBits[i] = table[halves[i]!]!;
  } else {
    for (let i = 0; i < halves.length; i++) outBits[i] = halves[i]! << 16;
  }
}

function encode(src: Float32Array, dtype: FloatDType, out: Uint8Array): void {
  if (dtype === "F32") {
    out.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    return;
  }
  const bits = bitsOf(src);
  const aligned = out.byteOffset % 2 === 0;
  const halves = aligned
    ? new Uint16Array(out.buffer, out.byteOffset, src.length)
    : new Uint16Array(src.length);
  if (dtype === "F16") {
    for (let i = 0; i < bits.length; i++) halves[i] = f32BitsToF16BitsFast(bits[i]!);
  } else {
    for (let i = 0; i < bits.length; i++) halves[i] = f32BitsToBf16Bits(bits[i]!);
  }
  if (!aligned) out.set(new Uint8Array(halves.buffer));
}

/**
 * f32BitsToF16Bits with a branch-free path for results in the normal f16 range (where nearly all
 * weights land): rebias the exponent and round to nearest even with one add. Its rounding branch is a
 * coin flip on real data and costs most of the time there. Tested against the reference.
 */
export function f32BitsToF16BitsFast(bits: number): number {
  const magnitude = bits & 0x7fffffff;
  if (magnitude < F16_MIN_NORMAL_AS_F32_BITS || magnitude >= F16_OVERFLOW_AS_F32_BITS)
    return f32BitsToF16Bits(bits);
  const odd = (magnitude >>> 13) & 1;
  return ((bits >>> 16) & 0x8000) | ((magnitude - 0x38000000 + 0xfff + odd) >>> 13);
}

/** 2^-14, the smallest normal f16, as f32 bits. */
const F16_MIN_NORMAL_AS_F32_BITS = 0x38800000;
/** 2^16: from here on every f32 is f16 infinity (65520 and up already round there). */
const F16_OVERFLOW_AS_F32_BITS = 0x47800000;

/** 16-bit elements of `bytes`, copied first when the view is not 2-byte aligned. */
function halfView(bytes: Uint8Array): Uint16Array {
  const source = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(source.buffer, source.byteOffset, source.byteLength / 2);
}
