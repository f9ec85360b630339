/**
 * f32 fused multiply-add, `fma(x, y, z)` rounded once to f32 (IEEE 754 fusedMultiplyAdd), in plain
 * JavaScript: torch's CPU lerp computes `fmadd(w, b − a, a)` with a hardware FMA, and JavaScript has
 * none. x · y of two f32 values is exact in a double; the sum is then rounded once to double, and
 * TwoSum recovers that rounding's error exactly. Rounding the double to f32 gives the right answer
 * except when the double sits exactly on an f32 halfway point, where the error's sign decides.
 */

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The midpoint between the largest f32 and 2^128: at or past it a sum rounds to infinity. */
const F32_OVERFLOW_TIE = 3.4028235677973366e38;
const F32_MAX = 3.4028234663852886e38;

/** `x·y + z` with one rounding to f32; x, y and z must be f32 values. */
export function fusedMultiplyAddF32(x: number, y: number, z: number): number {
  const product = x * y; // exact: 24 + 24 significant bits fit in 53
  const sum = product + z;
  const rounded = Math.fround(sum);
  if (rounded === sum || !Number.isFinite(sum)) return rounded;
  const virtualZ = sum - product;
  const error = product - (sum - virtualZ) + (z - virtualZ); // TwoSum: sum + error is exact
  if (error === 0) return rounded;
  const magnitude = Math.abs(sum);
  if (magnitude >= F32_OVERFLOW_TIE) {
    // exactly on the overflow tie, an error toward zero keeps the largest finite f32
    const towardZero = error < 0 === sum > 0;
    return magnitude === F32_OVERFLOW_TIE && towardZero ? Math.sign(sum) * F32_MAX : rounded;
  }
  const other = neighbourToward(rounded, sum);
  if ((rounded + other) / 2 !== sum) return rounded; // not a tie: the double rounding did no harm
  return error > 0 ? Math.max(rounded, other) : Math.min(rounded, other);
}

/** The f32 next to `value` (an f32) in the direction of `target` (≠ value). */
function neighbourToward(value: number, target: number): number {
  scratch[0] = value;
  const bits = scratchBits[0]!;
  if ((bits & 0x7fffffff) === 0) {
    scratchBits[0] = target > 0 ? 1 : 0x80000001;
  } else {
    const awayFromZero = target > value === value > 0;
    scratchBits[0] = awayFromZero ? bits + 1 : bits - 1;
  }
  return scratch[0]!;
}
