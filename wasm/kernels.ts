// AssemblyScript source of the WebAssembly SIMD merge kernel (built to build/kernels.wasm by
// scripts/build-wasm.mjs). Semantics: src/kernels/merge-kernel.ts; the TypeScript reference is
// src/kernels/js-kernel.ts. WebAssembly float arithmetic is IEEE 754 binary32 with round to nearest
// even and no flush-to-zero, and has no fused multiply-add outside relaxed SIMD, so every product and
// sum is rounded on its own like torch's (lerp, fused in torch, is emulated exactly).
//
// Memory: imported and shared (src/kernels/wasm-kernel.ts owns it), so buffers the host allocates in it
// are worked on in place by pointer, from any thread. Every function takes pointers into that memory
// and an element count; the SIMD loops run over whole groups of 8 (or 4) lanes, so the host passes a
// multiple of 8 or stages a tail in scratch space large enough for a whole group.

const F16: i32 = 0;
const BF16: i32 = 1;
const CANONICAL_NAN: i32 = 0x7fc00000;

/** The first free byte of memory after the module's own data, 16-byte aligned: the host's from there. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~(15 as usize);
}

@inline function canonical(value: v128): v128 {
  return v128.bitselect(i32x4.splat(CANONICAL_NAN), value, f32x4.ne(value, value));
}

/**
 * 4 zero-extended f16 patterns → f32 (exact; NaN quieted like F16C). Integer work only, except
 * subnormals, which go through an exact (signed: x86 has no unsigned) integer → float conversion: float arithmetic on subnormal
 * operands is many times slower on x86.
 */
@inline function halfToFloat(half: v128): v128 {
  const sign = i32x4.shl(v128.and(half, i32x4.splat(0x8000)), 16);
  const magnitude = v128.and(half, i32x4.splat(0x7fff));
  const shifted = i32x4.shl(magnitude, 13);
  const normal = i32x4.add(shifted, i32x4.splat(0x38000000)); // rebias the exponent 15 → 127
  const subnormal = f32x4.mul(f32x4.convert_i32x4_s(magnitude), f32x4.splat(reinterpret<f32>(0x33800000))); // · 2^-24
  const isSpecial = i32x4.ge_s(magnitude, i32x4.splat(0x7c00));
  const quietBit = v128.and(i32x4.gt_s(magnitude, i32x4.splat(0x7c00)), i32x4.splat(0x00400000));
  const special = v128.or(v128.or(shifted, i32x4.splat(0x7f800000)), quietBit);
  let result = v128.bitselect(subnormal, normal, i32x4.lt_s(magnitude, i32x4.splat(0x0400)));
  result = v128.bitselect(special, result, isSpecial);
  return v128.or(result, sign);
}

/** 4 f32 → f16 patterns in i32 lanes, round to nearest even; NaN → sign | 0x7e00. */
@inline function floatToHalf(value: v128): v128 {
  const sign = i32x4.shr_u(v128.and(value, i32x4.splat(0x80000000)), 16);
  const magnitude = v128.and(value, i32x4.splat(0x7fffffff));
  // below 2^-14 the result is subnormal: adding 0.5 rounds to a multiple of 2^-24 in hardware. f32
  // subnormals (which round to 0 anyway) are replaced by 0 first: adding them would be slow on x86.
  const tiny = i32x4.lt_s(magnitude, i32x4.splat(0x00800000));
  const addend = v128.andnot(magnitude, tiny);
  const subnormal = i32x4.sub(f32x4.add(addend, f32x4.splat(0.5)), i32x4.splat(0x3f000000));
  const odd = v128.and(i32x4.shr_u(magnitude, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(magnitude, i32x4.add(odd, i32x4.splat(-0x38000000 + 0xfff))), 13);
  let result = v128.bitselect(subnormal, normal, i32x4.lt_s(magnitude, i32x4.splat(0x38800000)));
  result = v128.bitselect(i32x4.splat(0x7c00), result, i32x4.ge_s(magnitude, i32x4.splat(0x47800000)));
  result = v128.bitselect(i32x4.splat(0x7e00), result, i32x4.gt_s(magnitude, i32x4.splat(0x7f800000)));
  return v128.or(result, sign);
}

/** 4 f32 → bf16 patterns in i32 lanes, like c10::round_to_nearest_even (NaN → 0x7fc0). */
@inline function floatToBfloat(value: v128): v128 {
  const odd = v128.and(i32x4.shr_u(value, 16), i32x4.splat(1));
  const rounded = i32x4.shr_u(i32x4.add(value, i32x4.add(odd, i32x4.splat(0x7fff))), 16);
  return v128.bitselect(i32x4.splat(0x7fc0), rounded, f32x4.ne(value, value));
}

/** Whether 8 halves are all normal numbers (no zero, subnormal, infinity or NaN): the common case. */
@inline function halvesAreNormal(raw: v128): bool {
  const exponent = v128.and(raw, i16x8.splat(0x7c00));
  return !v128.any_true(v128.or(i16x8.eq(exponent, i16x8.splat(0)), i16x8.eq(exponent, i16x8.splat(0x7c00))));
}

/**
 * halfToFloat for normal halves only, from sign-extended lanes: shifting moves exponent and mantissa
 * into place (bits 27..13) with copies of the sign above; the mask keeps the sign bit alone and the
 * add rebiases the exponent (15 → 127), which cannot carry into the sign for a normal half.
 */
@inline function normalHalfToFloat(signExtended: v128): v128 {
  return i32x4.add(v128.and(i32x4.shl(signExtended, 13), i32x4.splat(0x8fffe000)), i32x4.splat(0x38000000));
}

/** Whether 8 f32 values all land in the normal f16 range (and none is NaN): the common case. */
@inline function floatsAreHalfNormal(low: v128, high: v128): bool {
  const lowMagnitude = v128.and(low, i32x4.splat(0x7fffffff));
  const highMagnitude = v128.and(high, i32x4.splat(0x7fffffff));
  // magnitude − 2^-14 (as bits) below the width of the normal f16 range, compared unsigned
  const width = i32x4.splat(0x47800000 - 0x38800000);
  const lowOut = i32x4.ge_u(i32x4.sub(lowMagnitude, i32x4.splat(0x38800000)), width);
  const highOut = i32x4.ge_u(i32x4.sub(highMagnitude, i32x4.splat(0x38800000)), width);
  return !v128.any_true(v128.or(lowOut, highOut));
}

/** floatToHalf for values in the normal f16 range only. */
@inline function normalFloatToHalf(value: v128): v128 {
  const sign = i32x4.shr_u(v128.and(value, i32x4.splat(0x80000000)), 16);
  const magnitude = v128.and(value, i32x4.splat(0x7fffffff));
  const odd = v128.and(i32x4.shr_u(magnitude, 13), i32x4.splat(1));
  return v128.or(i32x4.shr_u(i32x4.add(magnitude, i32x4.add(odd, i32x4.splat(-0x38000000 + 0xfff))), 13), sign);
}

/** Whether the 8 elements at `index` take the fast path when decoded (always, except f16 specials). */
@inline function fastToDecode(base: usize, index: i32, dtype: i32): bool {
  return dtype != F16 || halvesAreNormal(v128.load(base + ((index as usize) << 1)));
}

@inline function loadLow(base: usize, index: i32, dtype: i32, fast: bool): v128 {
  if (dtype == F16) {
    const raw = v128.load(base + ((index as usize) << 1));
    return fast ? normalHalfToFloat(i32x4.extend_low_i16x8_s(raw)) : halfToFloat(i32x4.extend_low_i16x8_u(raw));
  }
  if (dtype == BF16) return i32x4.shl(i32x4.extend_low_i16x8_u(v128.load(base + ((index as usize) << 1))), 16);
  return v128.load(base + ((index as usize) << 2));
}

@inline function loadHigh(base: usize, index: i32, dtype: i32, fast: bool): v128 {
  if (dtype == F16) {
    const raw = v128.load(base + ((index as usize) << 1));
    return fast ? normalHalfToFloat(i32x4.extend_high_i16x8_s(raw)) : halfToFloat(i32x4.extend_high_i16x8_u(raw));
  }
  if (dtype == BF16) return i32x4.shl(i32x4.extend_high_i16x8_u(v128.load(base + ((index as usize) << 1))), 16);
  return v128.load(base + ((index as usize) << 2), 16);
}

@inline function store8(base: usize, index: i32, dtype: i32, low: v128, high: v128): void {
  if (dtype == F16) {
    const halves = floatsAreHalfNormal(low, high)
      ? i16x8.narrow_i32x4_u(normalFloatToHalf(low), normalFloatToHalf(high))
      : i16x8.narrow_i32x4_u(floatToHalf(low), floatToHalf(high));
    v128.store(base + ((index as usize) << 1), halves);
  } else if (dtype == BF16) {
    v128.store(base + ((index as usize) << 1), i16x8.narrow_i32x4_u(floatToBfloat(low), floatToBfloat(high)));
  } else {
    v128.store(base + ((index as usize) << 2), low);
    v128.store(base + ((index as usize) << 2), high, 16);
  }
}

export function toFloat32(src: usize, dtype: i32, out: usize, count: i32): void {
  for (let i = 0; i < count; i += 8) {
    const fast = fastToDecode(src, i, dtype);
    store8(out, i, 2, loadLow(src, i, dtype, fast), loadHigh(src, i, dtype, fast));
  }
}

export function fromFloat32(src: usize, dtype: i32, out: usize, count: i32): void {
  for (let i = 0; i < count; i += 8) store8(out, i, dtype, loadLow(src, i, 2, true), loadHigh(src, i, 2, true));
}

export function weightedSumF32(a: usize, b: usize, out: usize, w0: f32, w1: f32, count: i32): void {
  const left = f32x4.splat(w0);
  const right = f32x4.splat(w1);
  for (let i = 0; i < count; i += 4) {
    const offset = (i as usize) << 2;
    const sum = f32x4.add(f32x4.mul(v128.load(a + offset), left), f32x4.mul(v128.load(b + offset), right));
    v128.store(out + offset, canonical(sum));
  }
}

// torch's CPU lerp_vec (aten/src/ATen/native/cpu/LerpKernel.cpp) is a fused multiply-add, which
// WebAssembly lacks (relaxed SIMD's madd may or may not fuse), so each lane computes it exactly in
// f64 like src/kernels/fused-multiply-add.ts: scalar code, as lerp is not the hot path.
export function lerpF32(a: usize, b: usize, out: usize, weight: f32, count: i32): void {
  const small = Mathf.abs(weight) < 0.5;
  const coefficient: f32 = small ? weight : weight - 1.0;
  for (let i = 0; i < count; i++) {
    const offset = (i as usize) << 2;
    const start = load<f32>(a + offset);
    const end = load<f32>(b + offset);
    const result = fusedMultiplyAdd(coefficient, end - start, small ? start : end);
    store<f32>(out + offset, result != result ? reinterpret<f32>(CANONICAL_NAN) : result);
  }
}

/** The midpoint between the largest f32 and 2^128: at or past it a sum rounds to infinity. */
const F32_OVERFLOW_TIE: f64 = 3.4028235677973366e38;
const F32_MAX: f64 = 3.4028234663852886e38;

/** `x·y + z` rounded once to f32: exact product and TwoSum in f64, then a tie fix-up. */
@inline function fusedMultiplyAdd(x: f32, y: f32, z: f32): f32 {
  const product = (x as f64) * (y as f64);
  const sum = product + (z as f64);
  const rounded = sum as f32;
  if ((rounded as f64) == sum || !isFinite(sum)) return rounded;
  const virtualZ = sum - product;
  const error = product - (sum - virtualZ) + ((z as f64) - virtualZ);
  if (error == 0) return rounded;
  const magnitude = Math.abs(sum);
  if (magnitude >= F32_OVERFLOW_TIE) {
    const towardZero = (error < 0) == (sum > 0);
    if (magnitude == F32_OVERFLOW_TIE && towardZero) return (sum > 0 ? F32_MAX : -F32_MAX) as f32;
    return rounded;
  }
  const other = neighbourToward(rounded, sum);
  if (((rounded as f64) + (other as f64)) / 2 != sum) return rounded;
  return error > 0 ? Mathf.max(rounded, other) : Mathf.min(rounded, other);
}

@inline function neighbourToward(value: f32, target: f64): f32 {
  const bits = reinterpret<u32>(value);
  if ((bits & 0x7fffffff) == 0) return reinterpret<f32>(target > 0 ? 1 : 0x80000001);
  const awayFromZero = (target > (value as f64)) == (value > 0);
  return reinterpret<f32>(awayFromZero ? bits + 1 : bits - 1);
}

export function addDifferenceF32(a: usize, b: usize, c: usize, out: usize, alpha: f32, count: i32): void {
  const scale = f32x4.splat(alpha);
  for (let i = 0; i < count; i += 4) {
    const offset = (i as usize) << 2;
    const difference = f32x4.sub(v128.load(b + offset), v128.load(c + offset));
    const sum = f32x4.add(v128.load(a + offset), f32x4.mul(scale, difference));
    v128.store(out + offset, canonical(sum));
  }
}

export function weightedSum(
  a: usize,
  aType: i32,
  b: usize,
  bType: i32,
  out: usize,
  outType: i32,
  w0: f32,
  w1: f32,
  count: i32,
): void {
  const left = f32x4.splat(w0);
  const right = f32x4.splat(w1);
  for (let i = 0; i < count; i += 8) {
    const fastA = fastToDecode(a, i, aType);
    const fastB = fastToDecode(b, i, bType);
    const low = f32x4.add(f32x4.mul(loadLow(a, i, aType, fastA), left), f32x4.mul(loadLow(b, i, bType, fastB), right));
    const high = f32x4.add(
      f32x4.mul(loadHigh(a, i, aType, fastA), left),
      f32x4.mul(loadHigh(b, i, bType, fastB), right),
    );
    store8(out, i, outType, canonical(low), canonical(high));
  }
}

/** (a·w0 + b·w1)·u + c·v, every product and sum rounded on its own: a weighted sum of a weighted sum. */
export function nestedWeightedSum(
  a: usize,
  aType: i32,
  b: usize,
  bType: i32,
  c: usize,
  cType: i32,
  out: usize,
  outType: i32,
  w0: f32,
  w1: f32,
  u: f32,
  v: f32,
  count: i32,
): void {
  const first = f32x4.splat(w0);
  const second = f32x4.splat(w1);
  const inner = f32x4.splat(u);
  const other = f32x4.splat(v);
  for (let i = 0; i < count; i += 8) {
    const fastA = fastToDecode(a, i, aType);
    const fastB = fastToDecode(b, i, bType);
    const fastC = fastToDecode(c, i, cType);
    const innerLow = f32x4.add(
      f32x4.mul(loadLow(a, i, aType, fastA), first),
      f32x4.mul(loadLow(b, i, bType, fastB), second),
    );
    const innerHigh = f32x4.add(
      f32x4.mul(loadHigh(a, i, aType, fastA), first),
      f32x4.mul(loadHigh(b, i, bType, fastB), second),
    );
    const low = f32x4.add(f32x4.mul(innerLow, inner), f32x4.mul(loadLow(c, i, cType, fastC), other));
    const high = f32x4.add(f32x4.mul(innerHigh, inner), f32x4.mul(loadHigh(c, i, cType, fastC), other));
    store8(out, i, outType, canonical(low), canonical(high));
  }
}

/** Elements at `src` (`count` of `dtype`, exactly) whose exponent is all ones: NaN or ±Inf. */
export function countNonFinite(src: usize, dtype: i32, count: i32): i32 {
  let found: i32 = 0;
  let i: i32 = 0;
  if (dtype == F16 || dtype == BF16) {
    const mask = i16x8.splat(dtype == F16 ? 0x7c00 : 0x7f80);
    // a special lane compares as −1, so subtracting the comparison counts it, 8 lanes at a time; the
    // 16-bit lane counts are added up every 16 Ki elements (2048 per lane), far from overflow
    while (i + 8 <= count) {
      let lanes = i16x8.splat(0);
      const stop = min(count - 7, i + 16384);
      for (; i < stop; i += 8) {
        const exponent = v128.and(v128.load(src + ((i as usize) << 1)), mask);
        lanes = i16x8.sub(lanes, i16x8.eq(exponent, mask));
      }
      found += horizontalSum16(lanes);
    }
    const scalarMask: i32 = dtype == F16 ? 0x7c00 : 0x7f80;
    for (; i < count; i++) if ((load<u16>(src + ((i as usize) << 1)) & scalarMask) == scalarMask) found++;
    return found;
  }
  const mask = i32x4.splat(0x7f800000);
  let lanes = i32x4.splat(0);
  for (; i + 4 <= count; i += 4) {
    const exponent = v128.and(v128.load(src + ((i as usize) << 2)), mask);
    lanes = i32x4.sub(lanes, i32x4.eq(exponent, mask));
  }
  found += i32x4.extract_lane(lanes, 0) + i32x4.extract_lane(lanes, 1) + i32x4.extract_lane(lanes, 2) + i32x4.extract_lane(lanes, 3);
  for (; i < count; i++) if ((load<u32>(src + ((i as usize) << 2)) & 0x7f800000) == 0x7f800000) found++;
  return found;
}

@inline function horizontalSum16(lanes: v128): i32 {
  const wide = i32x4.extadd_pairwise_i16x8_u(lanes);
  return i32x4.extract_lane(wide, 0) + i32x4.extract_lane(wide, 1) + i32x4.extract_lane(wide, 2) + i32x4.extract_lane(wide, 3);
}

/**
 * Elements [begin, begin + count) of the row-major [rows, cols] matrix base + m·(up @ down) (up [rows,
 * rank], down [rank, cols] with its rows `stride` floats apart, all f32) into `out` (which may be `base`). Each element sums its rank
 * products in order from +0, every product and sum rounded to f32 (src/kernels/merge-kernel.ts); the
 * lanes run 16 then 4 columns of one row at a time, the rest one by one with the same operations.
 */
export function addLowRankF32(
  base: usize,
  up: usize,
  down: usize,
  rank: i32,
  cols: i32,
  stride: i32,
  begin: i32,
  multiplier: f32,
  out: usize,
  count: i32,
): void {
  // the rest of a row begun before the range, then the whole rows LOW_RANK_TILE columns at a time
  // (those columns of down stay in the cache while every row uses them), then a row's beginning
  let t: i32 = 0;
  const column = begin % cols;
  if (column != 0) {
    t = min(cols - column, count);
    lowRankRow(base, up + ((((begin / cols) * rank) as usize) << 2), down, rank, stride, column, multiplier, out, t);
  }
  const rows = (count - t) / cols;
  const first = (begin + t) / cols;
  for (let j: i32 = 0; rows > 0 && j < cols; j += LOW_RANK_TILE) {
    const width = min(LOW_RANK_TILE, cols - j);
    for (let r: i32 = 0; r < rows; r++) {
      const at = ((t + r * cols + j) as usize) << 2;
      lowRankRow(base + at, up + ((((first + r) * rank) as usize) << 2), down, rank, stride, j, multiplier, out + at, width);
    }
  }
  t += rows * cols;
  if (t < count) {
    const at = (t as usize) << 2;
    lowRankRow(base + at, up + (((((begin + t) / cols) * rank) as usize) << 2), down, rank, stride, 0, multiplier, out + at, count - t);
  }
}

const LOW_RANK_TILE: i32 = 512;

function lowRankRow(base: usize, upRow: usize, down: usize, rank: i32, rowFloats: i32, column: i32, multiplier: f32, out: usize, count: i32): void {
  const m = f32x4.splat(multiplier);
  const stride = (rowFloats as usize) << 2;
  let t: i32 = 0;
  for (; t + 16 <= count; t += 16) {
    let d = down + (((column + t) as usize) << 2);
    let s0 = f32x4.splat(0);
    let s1 = f32x4.splat(0);
    let s2 = f32x4.splat(0);
    let s3 = f32x4.splat(0);
    for (let k: i32 = 0; k < rank; k++) {
      const u = f32x4.splat(load<f32>(upRow + ((k as usize) << 2)));
      s0 = f32x4.add(s0, f32x4.mul(u, v128.load(d)));
      s1 = f32x4.add(s1, f32x4.mul(u, v128.load(d + 16)));
      s2 = f32x4.add(s2, f32x4.mul(u, v128.load(d + 32)));
      s3 = f32x4.add(s3, f32x4.mul(u, v128.load(d + 48)));
      d += stride;
    }
    const at = (t as usize) << 2;
    v128.store(out + at, canonical(f32x4.add(v128.load(base + at), f32x4.mul(m, s0))));
    v128.store(out + at + 16, canonical(f32x4.add(v128.load(base + at + 16), f32x4.mul(m, s1))));
    v128.store(out + at + 32, canonical(f32x4.add(v128.load(base + at + 32), f32x4.mul(m, s2))));
    v128.store(out + at + 48, canonical(f32x4.add(v128.load(base + at + 48), f32x4.mul(m, s3))));
  }
  for (; t + 4 <= count; t += 4) {
    let d = down + (((column + t) as usize) << 2);
    let s = f32x4.splat(0);
    for (let k: i32 = 0; k < rank; k++) {
      s = f32x4.add(s, f32x4.mul(f32x4.splat(load<f32>(upRow + ((k as usize) << 2))), v128.load(d)));
      d += stride;
    }
    const at = (t as usize) << 2;
    v128.store(out + at, canonical(f32x4.add(v128.load(base + at), f32x4.mul(m, s))));
  }
  for (; t < count; t++) {
    let d = down + (((column + t) as usize) << 2);
    let s: f32 = 0;
    for (let k: i32 = 0; k < rank; k++) {
      const product: f32 = load<f32>(upRow + ((k as usize) << 2)) * load<f32>(d);
      s = s + product;
      d += stride;
    }
    const step: f32 = multiplier * s;
    const r: f32 = load<f32>(base + ((t as usize) << 2)) + step;
    store<f32>(out + ((t as usize) << 2), r != r ? reinterpret<f32>(CANONICAL_NAN) : r);
  }
}

/** Copies `count` bytes from `src` to `dst` (memmove semantics): bulk memory, fast whatever the alignment. */
export function copyBytes(dst: usize, src: usize, count: usize): void {
  memory.copy(dst, src, count);
}
