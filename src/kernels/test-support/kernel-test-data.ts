import { encodeFromFloat32 } from "../../io/float-convert.js";
import type { FloatDType } from "../merge-kernel.js";

/** Deterministic pseudo-random 32-bit values (mulberry32), so failures reproduce. */
export function randomWords(count: number, seed: number): Uint32Array {
  const words = new Uint32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    words[i] = (t ^ (t >>> 14)) >>> 0;
  }
  return words;
}

/** f32 bit patterns at the edges of f32, f16 and bf16 rounding (each one also with the sign set). */
export const EDGE_F32_BITS: readonly number[] = [
  0x00000000, // 0
  0x00000001, // smallest f32 subnormal
  0x007fffff, // largest f32 subnormal
  0x00800000, // smallest f32 normal
  0x33000000, // 2^-25: exactly half the smallest f16 subnormal, rounds to 0 (even)
  0x33000001, // just above: rounds up to the smallest f16 subnormal
  0x33800000, // 2^-24: the smallest f16 subnormal
  0x33c00000, // 1.5 · 2^-24: halfway between subnormals 1 and 2, rounds to 2 (even)
  0x34200000, // 2.5 · 2^-24: halfway between 2 and 3, rounds to 2 (even)
  0x387fc000, // largest f16 subnormal
  0x387fe000, // halfway between the largest f16 subnormal and the smallest normal
  0x38800000, // smallest f16 normal
  0x3f800000, // 1
  0x3f801000, // 1 + 2^-11: f16 halfway, rounds to 1 (even)
  0x3f803000, // 1 + 3 · 2^-11: f16 halfway, rounds up (even)
  0x3f801001, // just above an f16 halfway point
  0x3f808000, // bf16 halfway, rounds to even (down)
  0x3f818000, // bf16 halfway, rounds to even (up)
  0x3f807fff, // just below a bf16 halfway point
  0x477fe000, // 65504, the largest f16
  0x477fefff, // just below the f16 overflow threshold: 65504
  0x477ff000, // 65520: rounds to f16 infinity
  0x47800000, // 65536
  0x7f7fffff, // largest f32: bf16 infinity
  0x7f7f7fff, // largest f32 that stays finite in bf16
  0x7f800000, // infinity
  0x7fc00000, // quiet NaN
  0x7f800001, // signalling NaN
  0x7fa00000, // signalling NaN with a payload in the f16 mantissa bits
  0x7fffffff, // NaN with every payload bit set
  0x3eaaaaab, // 1/3
  0x3dcccccd, // 0.1
];

export const EDGE_F32: Float32Array = (() => {
  const bits = new Uint32Array(EDGE_F32_BITS.length * 2);
  EDGE_F32_BITS.forEach((value, i) => {
    bits[2 * i] = value;
    bits[2 * i + 1] = (value | 0x80000000) >>> 0;
  });
  return new Float32Array(bits.buffer);
})();

/** Weights from the brief and beyond: pure A, pure B, the usual, extrapolation and non-finite. */
export const EDGE_ALPHAS: readonly number[] = [
  0,
  1,
  0.3,
  0.5,
  0.7,
  0.25,
  0.4999999,
  0.5000001,
  1e-8,
  1 - 1e-8,
  -0.25,
  -0.7,
  2.5,
  1e6,
  -1e30,
  1e-40,
  Number.POSITIVE_INFINITY,
  Number.NaN,
];

/**
 * `count` random f32 values for `seed`: a mix of arbitrary bit patterns (every class, NaN included),
 * weight-like magnitudes, and the edge values above, in a shuffled order.
 */
export function mixedFloat32(count: number, seed: number): Float32Array {
  const words = randomWords(count * 2, seed);
  const bits = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const kind = words[2 * i]! % 4;
    const word = words[2 * i + 1]!;
    if (kind === 0)
      bits[i] = word; // any pattern
    else if (kind === 1) bits[i] = EDGE_F32_BITS[word % EDGE_F32_BITS.length]! | (word & 0x80000000);
    else bits[i] = ((word & 0x80000000) | ((((word >>> 23) % 40) + 100) << 23) | (word & 0x7fffff)) >>> 0; // ~1e-12..1e3
  }
  return new Float32Array(bits.buffer);
}

/** `count` elements of `dtype` as bytes: random patterns of every class, edge values mixed in. */
export function mixedEncoded(dtype: FloatDType, count: number, seed: number): Uint8Array {
  if (dtype === "F32") return new Uint8Array(mixedFloat32(count, seed).buffer);
  const words = randomWords(count, seed);
  const halves = new Uint16Array(count);
  for (let i = 0; i < count; i++) {
    const word = words[i]!;
    // half the time an arbitrary pattern, else a moderate exponent so sums stay finite and round
    halves[i] = word % 2 === 0 ? word >>> 16 : (word >>> 16) & 0xbfff;
  }
  return new Uint8Array(halves.buffer);
}

/** A copy of `bytes` that starts `offset` bytes into a larger buffer (an unaligned view when offset is odd). */
export function viewAt(bytes: Uint8Array, offset: number): Uint8Array {
  const backing = new Uint8Array(bytes.byteLength + offset + 3);
  backing.fill(0xa5);
  const view = backing.subarray(offset, offset + bytes.byteLength);
  view.set(bytes);
  return view;
}

export function hex16(bytes: Uint8Array): string[] {
  const copy = bytes.slice();
  return Array.from(new Uint16Array(copy.buffer), (value) => value.toString(16).padStart(4, "0"));
}

export function hex32(values: Float32Array | Uint8Array): string[] {
  const copy = values instanceof Float32Array ? new Uint8Array(values.slice().buffer) : values.slice();
  return Array.from(new Uint32Array(copy.buffer), (value) => value.toString(16).padStart(8, "0"));
}

/**
 * Weight-like elements of `dtype`: normal numbers of moderate size (the SIMD fast paths), with an
 * edge value (zero, subnormal, infinity, NaN, huge) every 37th element, so that some groups of 8
 * lanes take the fast path and some the careful one.
 */
export function weightLikeEncoded(dtype: FloatDType, count: number, seed: number): Uint8Array {
  const words = randomWords(count, seed);
  const values = new Float32Array(count);
  const bits = new Uint32Array(values.buffer);
  for (let i = 0; i < count; i++) {
    const word = words[i]!;
    if (i % 37 === 36) bits[i] = EDGE_F32_BITS[word % EDGE_F32_BITS.length]! | (word & 0x80000000);
    else bits[i] = ((word & 0x80000000) | ((((word >>> 23) % 24) + 105) << 23) | (word & 0x7fffff)) >>> 0;
  }
  return encodeFromFloat32(values, dtype);
}
