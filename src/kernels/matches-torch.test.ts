import { beforeAll, describe, expect, it } from "vitest";
import { createJsKernel } from "./js-kernel.js";
import type { FloatDType, MergeKernel } from "./merge-kernel.js";
import { createNativeKernel, nativeKernelBuilt } from "./native-kernel.js";
import { ensureWasmKernelBuilt, WASM_BUILD_TIMEOUT_MS } from "./test-support/ensure-wasm-built.js";
import { createWasmKernel } from "./wasm-kernel.js";

/*
 * Expected values computed with PyTorch 1.13.1 (Debian bookworm python3-torch, CPU, AVX2 capability):
 *   A = torch.tensor(A_BITS, dtype=torch.int16).view(torch.float16)   # or .view(torch.bfloat16)
 *   r = (1 - a) * A.float() + a * B.float()                            # python float a
 *   r.half() / r.bfloat16() / r, read back as raw bits with .view(torch.int16 / torch.int32)
 * and for add difference `A.float() + a * (B.float() - C.float())`.
 */
const A_BITS = [
  0x3c00, 0xbc00, 0x0001, 0x8001, 0x03ff, 0x7bff, 0xfbff, 0x3555, 0x4248, 0x0000, 0x8000, 0x7c00, 0x2e66,
  0x1234, 0x5678, 0xc7d0,
];
const B_BITS = [
  0x4000, 0x3c00, 0x0001, 0x0003, 0x0400, 0x7bff, 0x7bff, 0xb555, 0x4249, 0x8000, 0x8000, 0x3c00, 0x2e67,
  0x9abc, 0xdef0, 0x47d1,
];
const C_BITS = new Array<number>(16).fill(0x3800);

interface TorchCase {
  alpha: number;
  inType: FloatDType;
  outType: FloatDType;
  bits: number[];
}

const WEIGHTED_SUM_CASES: TorchCase[] = [
  {
    alpha: 0.3,
    inType: "F16",
    outType: "F16",
    bits: [
      0x3d33, 0xb666, 0x0001, 0x0000, 0x03ff, 0x7bff, 0xf666, 0x3044, 0x4248, 0x0000, 0x8000, 0x7c00, 0x2e66,
      0x8f7a, 0xd398, 0xc23f,
    ],
  },
  {
    alpha: 0.7,
    inType: "F16",
    outType: "F16",
    bits: [
      0x3ecd, 0x3666, 0x0001, 0x0002, 0x0400, 0x7bff, 0x7666, 0xb044, 0x4249, 0x0000, 0x8000, 0x7c00, 0x2e67,
      0x9840, 0xdc5f, 0x4241,
    ],
  },
  { alpha: 0, inType: "F16", outType: "F16", bits: A_BITS },
  {
    alpha: 0.5,
    inType: "F16",
    outType: "F16",
    bits: [
      0x3e00, 0x0000, 0x0001, 0x0001, 0x0400, 0x7bff, 0x0000, 0x0000, 0x4248, 0x0000, 0x8000, 0x7c00, 0x2e66,
      0x952f, 0xd952, 0x1800,
    ],
  },
  {
    alpha: 0.001,
    inType: "F16",
    outType: "F16",
    bits: [
      0x3c01, 0xbbfc, 0x0001, 0x8001, 0x03ff, 0x7bff, 0xfbfb, 0x3552, 0x4248, 0x0000, 0x8000, 0x7c00, 0x2e66,
      0x122c, 0x566f, 0xc7cc,
    ],
  },
  {
    alpha: 2.5,
    inType: "F16",
    outType: "F16",
    bits: [
      0x4300, 0x4400, 0x0001, 0x0009, 0x0402, 0x7bff, 0x7c00, 0xbd55, 0x424a, 0x8000, 0x0000, 0xfc00, 0x2e68,
      0xa0ca, 0xe4f1, 0x4fd1,
    ],
  },
  {
    alpha: -0.25,
    inType: "F16",
    outType: "F16",
    bits: [
      0x3a00, 0xbe00, 0x0001, 0x8002, 0x03ff, 0x7bff, 0xfc00, 0x3800, 0x4248, 0x0000, 0x0000, 0x7c00, 0x2e66,
      0x173e, 0x5b83, 0xc9dc,
    ],
  },
  {
    alpha: 0.3,
    inType: "F16",
    outType: "BF16",
    bits: [
      0x3fa6, 0xbecd, 0x3380, 0x324d, 0x3880, 0x4780, 0xc6cd, 0x3e08, 0x4049, 0x0000, 0x8000, 0x7f80, 0x3dcd,
      0xb9ef, 0xc273, 0xc048,
    ],
  },
  {
    alpha: 0.7,
    inType: "F16",
    outType: "F32",
    bits: [
      0x3fd9999a, 0x3ecccccc, 0x33800000, 0x33e66666, 0x387feccd, 0x477fe000, 0x46ccb333, 0xbe088000,
      0x40491666, 0x00000000, 0x80000000, 0x7f800000, 0x3dccd666, 0xbb07f666, 0xc38be000, 0x40482ccc,
    ],
  },
  {
    alpha: 0.3,
    inType: "BF16",
    outType: "BF16",
    bits: [
      0x3f1b, 0xbb4d, 0x0001, 0x0000, 0x03ff, 0x7bff, 0xfb4c, 0x34aa, 0x4248, 0x0000, 0x8000, 0x7bb3, 0x2e66,
      0x99e2, 0xde10, 0xc726,
    ],
  },
  {
    alpha: 0.3,
    inType: "BF16",
    outType: "F16",
    bits: [
      0x38d8, 0x9a66, 0x0000, 0x0000, 0x0000, 0x7c00, 0xfc00, 0x0005, 0x5242, 0x0000, 0x8000, 0x7c00, 0x0000,
      0x8000, 0xfc00, 0xf92e,
    ],
  },
];

const ADD_DIFFERENCE_F32_ALPHA_0_3 = [
  0x3fb9999a, 0xbf59999a, 0xbe199995, 0xbe19999a, 0xbe1984d1, 0x47a65186, 0xc7331cf3, 0x3daa8ccc, 0x407bbccd,
  0xbe19999a, 0xbe19999a, 0x7f800000, 0xbca3f334, 0xbe19d5b4, 0xc1eeccd0, 0xc0b3c333,
];

/*
 * torch.lerp in f32 (same torch; its CPU kernel computes fmadd(w, b − a, a) for |w| < 0.5 and
 * fmadd(w − 1, b − a, b) otherwise, with a fused multiply-add; 2 of 16 elements differ from the
 * unfused formula at w = 0.3 and 0.7):
 *   torch.manual_seed(3); a = torch.randn(16) * 0.05; b = torch.randn(16) * 0.05; torch.lerp(a, b, w)
 */
const LERP_A = [
  0xbb7b25e5, 0x3c936850, 0xbd202834, 0x3b6a61d0, 0x3d0828bb, 0xbc6aee30, 0x3da5f1c4, 0xbda380bf, 0xbb295923,
  0xbc7aa7c2, 0x3c4b9298, 0xbc365264, 0x3d3b0376, 0x3c276570, 0x3ceb1aa8, 0x3caa8780,
];
const LERP_B = [
  0x3c5638c5, 0x3d3eb1bd, 0xbcd2b940, 0xbda9216b, 0x3d5639b8, 0x3cd5e347, 0xbc08a66b, 0x3b2dc7a4, 0x3ce6ead7,
  0x3de7124b, 0x3dbf6988, 0xbd74c8b3, 0x3d4c5fe0, 0x3cbc148f, 0x3df97cb0, 0xbbf087d0,
];
const LERP_CASES: { weight: number; bits: number[] }[] = [
  {
    weight: 0.3,
    bits: [
      0x3aa28666, 0x3cd99a10, 0xbd0fb7ee, 0xbcb672bf, 0x3d1f943a, 0xbb107971, 0x3d5e12ca, 0xbd61a54d,
      0x3bd9d436, 0x3cbd8e71, 0x3d1678f9, 0xbcd2aedc, 0x3d4038c9, 0x3c66068b, 0x3d67fa8b, 0x3c4aa954,
    ],
  },
  {
    weight: 0.7,
    bits: [
      0x3c031e7f, 0x3d1b98dd, 0xbcf399cc, 0xbd686359, 0x3d3ece39, 0x3c64f6ba, 0x3c974e46, 0xbcb4ff6e,
      0x3c9b4aa5, 0x3d9859b6, 0x3d8d9f5e, 0xbd3905de, 0x3d472a8d, 0x3c9cc402, 0x3dc04614, 0x3a910e23,
    ],
  },
  {
    weight: 0.5,
    bits: [
      0x3b976f4c, 0x3d0432f2, 0xbd04c26a, 0xbd21ce5c, 0x3d2f313a, 0x3bc0d85c, 0x3d14dcf6, 0xbd1e1282,
      0x3c51bfb3, 0x3d47bd52, 0x3d58dbdb, 0xbd112ea6, 0x3d43b1ab, 0x3c87e3a4, 0x3d9a21ad, 0x3bdccb18,
    ],
  },
  {
    weight: 0.9999,
    bits: [
      0x3c5631ad, 0x3d3eaebe, 0xbcd2bc0e, 0xbda91ce6, 0x3d5637b8, 0x3cd5dacb, 0xbc0880ee, 0x3b2d3d3a,
      0x3ce6e463, 0x3de70b93, 0x3dbf6548, 0xbd74c399, 0x3d4c5f6e, 0x3cbc11e3, 0x3df977ce, 0xbbf07030,
    ],
  },
];

function encode(bits: number[], dtype: FloatDType): Uint8Array {
  return new Uint8Array((dtype === "F32" ? Uint32Array.from(bits) : Uint16Array.from(bits)).buffer);
}

function decodeBits(bytes: Uint8Array, dtype: FloatDType): number[] {
  return Array.from(dtype === "F32" ? new Uint32Array(bytes.buffer) : new Uint16Array(bytes.buffer));
}

const kernels: [string, () => Promise<MergeKernel>][] = [
  ["js", async () => createJsKernel()],
  ["wasm", () => createWasmKernel()],
];
if (nativeKernelBuilt()) kernels.push(["native", async () => createNativeKernel()]);
else
  it.skip("the native kernel matches torch: SKIPPED because the addon is not built (run `npm run build:native`)", () => {});

beforeAll(() => ensureWasmKernelBuilt(), WASM_BUILD_TIMEOUT_MS);

describe.each(kernels)("the %s kernel matches torch", (_, load) => {
  it.each(WEIGHTED_SUM_CASES)(
    "for ((1 − $alpha)·A + $alpha·B) from $inType stored as $outType",
    async ({ alpha, inType, outType, bits }) => {
      const kernel = await load();
      const out = new Uint8Array(16 * (outType === "F32" ? 4 : 2));
      kernel.weightedSum(encode(A_BITS, inType), inType, encode(B_BITS, inType), inType, alpha, out, outType);
      expect(decodeBits(out, outType).map(hex)).toEqual(bits.map(hex));
    },
  );

  it("for A + 0.3·(B − C) in f32", async () => {
    const kernel = await load();
    const [a, b, c] = [A_BITS, B_BITS, C_BITS].map((bits) => {
      const values = new Float32Array(16);
      kernel.toFloat32(encode(bits, "F16"), "F16", values);
      return values;
    }) as [Float32Array, Float32Array, Float32Array];
    const out = new Float32Array(16);
    kernel.addDifferenceF32(a, b, c, 0.3, out);
    expect(Array.from(new Uint32Array(out.buffer)).map(hex)).toEqual(ADD_DIFFERENCE_F32_ALPHA_0_3.map(hex));
  });

  it.each(LERP_CASES)("for torch.lerp(a, b, $weight) in f32", async ({ weight, bits }) => {
    const kernel = await load();
    const a = new Float32Array(Uint32Array.from(LERP_A).buffer);
    const b = new Float32Array(Uint32Array.from(LERP_B).buffer);
    const out = new Float32Array(16);
    kernel.lerpF32(a, b, weight, out);
    expect(Array.from(new Uint32Array(out.buffer)).map(hex)).toEqual(bits.map(hex));
  });

  it("except that 0 · inf gives the canonical NaN, where torch keeps x86's negative default NaN", async () => {
    // torch: ((1 - 1.0) * inf + 1.0 * 1.0).half() is 0xfe00 (and .bfloat16() 0xffff); gyoza stores 0x7e00
    const kernel = await load();
    const out = new Uint8Array(2);
    kernel.weightedSum(encode([0x7c00], "F16"), "F16", encode([0x3c00], "F16"), "F16", 1, out, "F16");
    expect(hex(new Uint16Array(out.buffer)[0]!)).toBe(hex(0x7e00));
  });
});

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
