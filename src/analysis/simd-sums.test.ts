import { describe, expect, it } from "vitest";
import { createSimdSums } from "./simd-sums.js";

function reference(m: Float32Array, a: Float32Array, b: Float32Array, c: Float32Array): number[] {
  let dot = 0;
  let direction = 0;
  let change = 0;
  for (let i = 0; i < m.length; i++) {
    const y = m[i]! - a[i]!;
    const d = b[i]! - c[i]!;
    dot += y * d;
    direction += d * d;
    change += y * y;
  }
  return [dot, direction, change];
}

describe("createSimdSums", () => {
  const simd = createSimdSums();

  it("is available on Node 20 (WebAssembly SIMD)", () => {
    expect(simd).not.toBeNull();
  });

  it.each([
    [0, 0],
    [0, 3],
    [1, 1027],
    [5, 4096],
    [2, 100_003],
  ])("agrees with a float64 loop to 1e-6 relative (offset %i, %i elements)", (offset, length) => {
    const total = offset + length + 8;
    const [m, a, b, c] = simd!.allocate([total, total, total, total]) as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    let state = 12345;
    const next = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31 - 0.5;
    };
    for (let i = 0; i < total; i++) {
      a[i] = next() * 0.1;
      c[i] = next() * 0.1;
      b[i] = a[i]! + next() * 0.01;
      m[i] = a[i]! + 0.3 * (b[i]! - c[i]!);
    }
    const slice = (x: Float32Array) => x.subarray(offset, offset + length);
    const got = simd!.sums(slice(m), slice(a), slice(b), slice(c));
    const want = reference(slice(m), slice(a), slice(b), slice(c));
    got.forEach((value, i) => {
      expect(Math.abs(value - want[i]!)).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]!) + 1e-12);
    });
  });
});
