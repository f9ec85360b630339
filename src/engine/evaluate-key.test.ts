import { describe, expect, it } from "vitest";
import { countNonFinite } from "./evaluate-key.js";

describe("countNonFinite", () => {
  it("counts NaN and infinities of every float dtype, at any position and alignment", () => {
    const halves = new Uint16Array([0x3c00, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x7bff, 0x7c01]);
    expect(countNonFinite(new Uint8Array(halves.buffer), "F16")).toBe(4);
    expect(countNonFinite(new Uint8Array(halves.buffer, 2), "F16")).toBe(4);
    expect(countNonFinite(new Uint8Array(halves.buffer, 4), "F16")).toBe(3);
    const bf = new Uint16Array([0x7f80, 0x3f80, 0xff80, 0x7fc0, 0x7f7f]);
    expect(countNonFinite(new Uint8Array(bf.buffer), "BF16")).toBe(3);
    const f32 = new Float32Array([
      1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -3.4e38,
      Number.NEGATIVE_INFINITY,
    ]);
    expect(countNonFinite(new Uint8Array(f32.buffer), "F32")).toBe(3);
  });
});
