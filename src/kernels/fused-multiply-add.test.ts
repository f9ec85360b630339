import { describe, expect, it } from "vitest";
import { fusedMultiplyAddF32 } from "./fused-multiply-add.js";
import { randomWords } from "./test-support/kernel-test-data.js";

/** An f32 from its bit pattern. */
function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

function bitsOf(value: number): number {
  return new Uint32Array(new Float32Array([value]).buffer)[0]!;
}

/** A finite f32 as an exact integer multiple of 2^-149. */
function scaled(value: number): bigint {
  const bits = bitsOf(value);
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = BigInt(exponent === 0 ? bits & 0x7fffff : (bits & 0x7fffff) | 0x800000);
  const magnitude = mantissa << BigInt(Math.max(exponent - 1, 0));
  return bits >>> 31 ? -magnitude : magnitude;
}

/** Independent reference: x·y + z computed exactly with BigInt (units of 2^-298), rounded once to f32. */
function exactFusedMultiplyAdd(x: number, y: number, z: number): number {
  if (![x, y, z].every(Number.isFinite)) return Math.fround(x * y + z);
  const sum = scaled(x) * scaled(y) + (scaled(z) << 149n);
  if (sum === 0n) return x * y + z; // the sign of an exact zero follows IEEE addition
  const negative = sum < 0n;
  const magnitude = negative ? -sum : sum;
  const topBit = magnitude.toString(2).length - 1; // value = magnitude · 2^-298
  const lsbExponent = Math.max(topBit - 298 - 23, -149);
  const shift = BigInt(lsbExponent + 298);
  let quotient = magnitude >> shift;
  const remainder = magnitude - (quotient << shift);
  const half = 1n << (shift - 1n);
  if (remainder > half || (remainder === half && (quotient & 1n) === 1n)) quotient++;
  const result = Number(quotient) * 2 ** lsbExponent;
  const rounded = result >= 2 ** 128 ? Number.POSITIVE_INFINITY : result;
  return negative ? -rounded : rounded;
}

function expectSameF32(actual: number, expected: number, context: string): void {
  expect(bitsOf(actual).toString(16), context).toBe(bitsOf(expected).toString(16));
}

describe("fusedMultiplyAddF32", () => {
  it("rounds once where rounding through a double would land on an f32 tie", () => {
    // 1 + 2^-23 + (2^-24 − 2^-54): the double is the tie 1 + 3·2^-24; the exact value lies below it
    const x = f32(0x3f800100); // 1 + 2^-15
    const y = f32(0x337ffe00); // 2^-24 · (1 − 2^-15)
    const z = f32(0x3f800001); // 1 + 2^-23
    expectSameF32(fusedMultiplyAddF32(x, y, z), f32(0x3f800001), "rounds down past the tie");
    expect(bitsOf(Math.fround(x * y + z))).toBe(0x3f800002); // what naive double rounding gives
    expectSameF32(fusedMultiplyAddF32(x, -y, -z), f32(0xbf800001), "mirrored");
    // 2^-49(1 − 2^-15) · 2^25(1 + 2^-15) = 2^-24(1 − 2^-30): a tiny weight times a large difference
    expectSameF32(fusedMultiplyAddF32(f32(0x26fffe00), f32(0x4c000100), z), f32(0x3f800001), "tiny weight");
  });

  it("keeps the largest finite f32 when the exact sum falls just short of the overflow tie", () => {
    const max = f32(0x7f7fffff);
    const halfUlp = 2 ** 103;
    // max + halfUlp·(1 − 2^-30) is below the tie; the double rounds it onto the tie
    const x = f32(0x3f800100);
    const y = Math.fround(halfUlp * (1 - 2 ** -15));
    expectSameF32(fusedMultiplyAddF32(x, y, max), exactFusedMultiplyAdd(x, y, max), "below the tie");
    expectSameF32(fusedMultiplyAddF32(x, y, max), max, "stays finite");
    expectSameF32(
      fusedMultiplyAddF32(f32(0x3f800000), Math.fround(halfUlp), max),
      Number.POSITIVE_INFINITY,
      "tie",
    );
  });

  it("matches exact arithmetic on near-tie products, subnormals and random values", () => {
    const words = randomWords(60_000, 2024);
    for (let i = 0; i < words.length; i += 3) {
      const u = words[i]! % 256;
      const k = (words[i + 1]! % 200) - 140; // reaches into the f32 subnormal range
      const odd = (words[i + 2]! | 1) & 0xffffff;
      // x·y = 2^k (1 − u²·2^-46) sits just below half an ulp of z = odd · 2^(k+1)
      const x = Math.fround(1 + u * 2 ** -23);
      const y = Math.fround(2 ** k * (1 - u * 2 ** -23));
      const z = Math.fround(odd * 2 ** (k + 1));
      for (const [p, q, r] of [
        [x, y, z],
        [x, -y, z],
        [-x, y, -z],
        [f32(words[i]!), f32(words[i + 1]!), f32(words[i + 2]!)],
      ] as [number, number, number][]) {
        const expected = exactFusedMultiplyAdd(p, q, r);
        const actual = fusedMultiplyAddF32(p, q, r);
        if (Number.isNaN(expected)) expect(Number.isNaN(actual)).toBe(true);
        else expectSameF32(actual, expected, `fma(${p}, ${q}, ${r})`);
      }
    }
  });
});
