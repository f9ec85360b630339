import { describe, expect, it } from "vitest";
import { createJsKernel } from "../kernels/js-kernel.js";
import { countNonFinite } from "./evaluate-op.js";

const kernel = createJsKernel();

describe("countNonFinite", () => {
  it("counts NaN and infinities of every float dtype, at any position and alignment", () => {
    const halves = new Uint16Array([0x3c00, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x7bff, 0x7c01]);
    expect(countNonFinite(new Uint8Array(halves.buffer), "F16", kernel)).toBe(4);
    expect(countNonFinite(new Uint8Array(halves.buffer, 2), "F16", kernel)).toBe(4);
    expect(countNonFinite(new Uint8Array(halves.buffer, 4), "F16", kernel)).toBe(3);
    const odd = new Uint8Array(halves.byteLength + 1).subarray(1);
    odd.set(new Uint8Array(halves.buffer));
    expect(countNonFinite(odd, "F16", kernel)).toBe(4);
    const bf = new Uint16Array([0x7f80, 0x3f80, 0xff80, 0x7fc0, 0x7f7f]);
    expect(countNonFinite(new Uint8Array(bf.buffer), "BF16", kernel)).toBe(3);
    const f32 = new Float32Array([
      1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -3.4e38,
      Number.NEGATIVE_INFINITY,
    ]);
    expect(countNonFinite(new Uint8Array(f32.buffer), "F32", kernel)).toBe(3);
    expect(countNonFinite(new Uint8Array(f32.buffer).slice(4), "F32", kernel)).toBe(3);
    const f64 = new Float64Array([Number.NaN, 1e300, Number.NEGATIVE_INFINITY]);
    expect(countNonFinite(new Uint8Array(f64.buffer), "F64", kernel)).toBe(2);
    expect(countNonFinite(new Uint8Array(8).fill(0xff), "I64", kernel)).toBe(0);
  });
});
