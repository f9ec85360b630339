import { beforeAll, describe, expect, it } from "vitest";
import { encodeFromFloat32, f32BitsToF16Bits } from "../io/float-convert.js";
import { createJsKernel, f32BitsToF16BitsFast } from "./js-kernel.js";
import {
  type EncodedArray,
  FLOAT_DTYPES,
  type FloatDType,
  floatDTypeBytes,
  type MergeKernel,
} from "./merge-kernel.js";
import { createNativeKernel, nativeKernelBuilt, nativeSimdAvailable } from "./native-kernel.js";
import { ensureWasmKernelBuilt, WASM_BUILD_TIMEOUT_MS } from "./test-support/ensure-wasm-built.js";
import {
  EDGE_ALPHAS,
  EDGE_F32,
  mixedEncoded,
  mixedFloat32,
  randomWords,
  viewAt,
  weightLikeEncoded,
} from "./test-support/kernel-test-data.js";
import { expectSameBits } from "./test-support/same-bits.js";
import { SPLIT_MIN_ELEMENTS } from "./wasm-helper.js";
import { createWasmKernel } from "./wasm-kernel.js";

/** Lengths around the SIMD widths (4, 8, 16 lanes) and the wasm chunk (16384 elements). */
const LENGTHS = [0, 1, 3, 7, 8, 9, 15, 16, 17, 33, 1001, 16384 + 13];

const reference = createJsKernel();

/**
 * weightedSumF32, lerpF32 and addDifferenceF32 of `kernel` on `operands` (the values of `inputs`,
 * wherever they live) into `actual`, each checked bit for bit against the reference on `inputs`.
 */
function expectF32MethodsMatch(
  kernel: MergeKernel,
  [a, b, c]: readonly [Float32Array, Float32Array, Float32Array],
  [x, y, z]: readonly [Float32Array, Float32Array, Float32Array],
  alpha: number,
  actual: Float32Array,
  context: string,
): void {
  const expected = new Float32Array(actual.length);
  reference.weightedSumF32(a, b, alpha, expected);
  kernel.weightedSumF32(x, y, alpha, actual);
  expectSameBits(actual, expected, 4, `weightedSumF32, ${context}`);
  reference.lerpF32(a, b, alpha, expected);
  kernel.lerpF32(x, y, alpha, actual);
  expectSameBits(actual, expected, 4, `lerpF32, ${context}`);
  reference.addDifferenceF32(a, b, c, alpha, expected);
  kernel.addDifferenceF32(x, y, z, alpha, actual);
  expectSameBits(actual, expected, 4, `addDifferenceF32, ${context}`);
}
/**
 * The nested weighted sum as the two steps it replaces, with the reference kernel: the inner sum into
 * an f32 array, then the outer sum from it, the inner sum first or second.
 */
function twoStepNested(
  [a, b, c]: readonly [EncodedArray, EncodedArray, EncodedArray],
  alpha: number,
  beta: number,
  innerFirst: boolean,
  outType: FloatDType,
): Uint8Array {
  const count = a.bytes.byteLength / floatDTypeBytes(a.dtype);
  const inner = new Uint8Array(count * 4);
  reference.weightedSum(a.bytes, a.dtype, b.bytes, b.dtype, alpha, inner, "F32");
  const out = new Uint8Array(count * floatDTypeBytes(outType));
  if (innerFirst) reference.weightedSum(inner, "F32", c.bytes, c.dtype, beta, out, outType);
  else reference.weightedSum(c.bytes, c.dtype, inner, "F32", beta, out, outType);
  return out;
}

/** Every (a, b, c, out) dtype quadruple of a nested weighted sum, 81 of them. */
type DTypeQuadruple = [FloatDType, FloatDType, FloatDType, FloatDType];
const DTYPE_QUADRUPLES: DTypeQuadruple[] = FLOAT_DTYPES.flatMap((a) =>
  FLOAT_DTYPES.flatMap((b) =>
    FLOAT_DTYPES.flatMap((c) => FLOAT_DTYPES.map((out): DTypeQuadruple => [a, b, c, out])),
  ),
);

/** Alpha and beta pairs for nested sums: plain, the ends, and outside [0, 1]. */
const NESTED_WEIGHTS = [
  [0.3, 0.7],
  [0, 1],
  [-0.25, 2.5],
] as const;

const nativeBuilt = nativeKernelBuilt();
const nativeSkipReason = nativeBuilt ? "" : " [SKIPPED: native addon not built; run `npm run build:native`]";

interface Candidate {
  title: string;
  load: () => Promise<MergeKernel>;
  skip: boolean;
}

const candidates: Candidate[] = [
  { title: "the WebAssembly SIMD kernel", load: () => createWasmKernel(), skip: false },
  {
    title: `the native kernel, AVX2 + F16C path${nativeSkipReason}`,
    load: async () => createNativeKernel("best"),
    skip: !nativeBuilt || !nativeSimdAvailable(),
  },
  {
    title: `the native kernel, portable C path${nativeSkipReason}`,
    load: async () => createNativeKernel("scalar"),
    skip: !nativeBuilt,
  },
];

beforeAll(() => ensureWasmKernelBuilt(), WASM_BUILD_TIMEOUT_MS);

if (!nativeBuilt) {
  it.skip("native kernel tests: SKIPPED because native/build/Release/gyoza_kernels.node is not built (run `npm run build:native`)", () => {});
}

// a plain loop rather than describe.each, whose titles vitest cuts short (and with them the skip reason)
for (const { title, load, skip } of candidates) {
  describe(`${title} agrees bit for bit with the TypeScript reference`, () => {
    let kernel: MergeKernel;
    beforeAll(async () => {
      if (!skip) kernel = await load();
    });

    it.skipIf(skip)("decodes every f16 and every bf16 bit pattern", () => {
      const all = new Uint16Array(65536).map((_, i) => i);
      const bytes = new Uint8Array(all.buffer);
      for (const dtype of ["F16", "BF16"] as const) {
        const expected = new Float32Array(65536);
        const actual = new Float32Array(65536);
        reference.toFloat32(bytes, dtype, expected);
        kernel.toFloat32(bytes, dtype, actual);
        expectSameBits(actual, expected, 4, `${dtype} decode`);
      }
    });

    it.skipIf(skip)("decodes f32 bytes unchanged, from an unaligned view", () => {
      const values = mixedFloat32(1001, 7);
      const out = new Float32Array(values.length);
      kernel.toFloat32(viewAt(new Uint8Array(values.buffer), 3), "F32", out);
      expectSameBits(out, values, 4, "F32 decode");
    });

    it.skipIf(skip)(
      "encodes edge values, halfway cases and random patterns like src/io/float-convert.ts",
      () => {
        const halfwayBits = new Uint32Array(4 * 65536);
        for (let h = 0; h < 65536; h++) {
          // every f16 and bf16 rounding boundary: the f32 at each halfway point, and one ulp either side
          const base = ((h & 0x7fff) << 13) + 0x38000000 + ((h & 0x8000) << 16);
          halfwayBits[4 * h] = (base + 0x1000) >>> 0;
          halfwayBits[4 * h + 1] = (base + 0x0fff) >>> 0;
          halfwayBits[4 * h + 2] = (base + 0x1001) >>> 0;
          halfwayBits[4 * h + 3] = ((h << 16) | 0x8000) >>> 0;
        }
        const inputs = [
          EDGE_F32,
          new Float32Array(halfwayBits.buffer),
          new Float32Array(randomWords(100_003, 1).buffer),
        ];
        for (const values of inputs) {
          for (const dtype of FLOAT_DTYPES) {
            const expected = encodeFromFloat32(values, dtype);
            const actual = new Uint8Array(expected.byteLength);
            kernel.fromFloat32(values, dtype, actual);
            expectSameBits(actual, expected, floatDTypeBytes(dtype), `${dtype} encode`);
            const unaligned = viewAt(new Uint8Array(expected.byteLength), 1);
            kernel.fromFloat32(values, dtype, unaligned);
            expectSameBits(
              unaligned,
              expected,
              floatDTypeBytes(dtype),
              `${dtype} encode into an unaligned view`,
            );
          }
        }
      },
    );

    it.skipIf(skip)(
      "computes weighted sums, lerps and add-differences in f32 for every alpha and length",
      () => {
        for (const length of LENGTHS) {
          const a = mixedFloat32(length, 11 + length);
          const b = mixedFloat32(length, 23 + length);
          const c = mixedFloat32(length, 37 + length);
          a.set(EDGE_F32.subarray(0, Math.min(length, EDGE_F32.length)));
          b.set(EDGE_F32.slice().reverse().subarray(0, Math.min(length, EDGE_F32.length)));
          for (const alpha of EDGE_ALPHAS) {
            const actual = new Float32Array(length);
            expectF32MethodsMatch(
              kernel,
              [a, b, c],
              [a, b, c],
              alpha,
              actual,
              `length ${length}, alpha ${alpha}`,
            );
          }
        }
      },
    );

    it.skipIf(skip)(
      "lerps with one rounding, like torch's fused multiply-add, also at double-rounding ties",
      () => {
        // fma(w, b − a, a) with w = 2^-49(1 − 2^-15), b − a = 2^25(1 + 2^-15), a = 1 + 2^-23: the exact
        // value lies just below a tie, so it rounds down to a; rounding through a double would round up
        const a = new Float32Array(new Uint32Array(9).fill(0x3f800001).buffer);
        const b = new Float32Array(new Uint32Array(9).fill(0x4c000100).buffer);
        const weight = new Float32Array(new Uint32Array([0x26fffe00]).buffer)[0]!;
        const out = new Float32Array(9);
        kernel.lerpF32(a, b, weight, out);
        expect(Array.from(new Uint32Array(out.buffer), (bits) => bits.toString(16))).toEqual(
          new Array(9).fill("3f800001"),
        );
      },
    );

    it.skipIf(skip)("writes f32 results into an output that aliases an input", () => {
      const a = mixedFloat32(1001, 5);
      const b = mixedFloat32(1001, 6);
      const expected = new Float32Array(a.length);
      reference.weightedSumF32(a, b, 0.3, expected);
      const aliased = a.slice();
      kernel.weightedSumF32(aliased, b, 0.3, aliased);
      expectSameBits(aliased, expected, 4, "weightedSumF32 in place");
      reference.lerpF32(a, b, 0.7, expected);
      const lerped = b.slice();
      kernel.lerpF32(a, lerped, 0.7, lerped);
      expectSameBits(lerped, expected, 4, "lerpF32 in place");
      reference.addDifferenceF32(a, b, b, 0.3, expected);
      const added = a.slice();
      kernel.addDifferenceF32(added, b, b, 0.3, added);
      expectSameBits(added, expected, 4, "addDifferenceF32 in place");
    });

    it.skipIf(skip)(
      "adds low-rank updates (a baked LoRA) for every rank, width and range, starting mid-row, also in place and in the kernel's own memory",
      () => {
        for (const rank of [1, 3, 4, 32]) {
          for (const cols of [1, 7, 17, 40, 333]) {
            const rows = 5;
            const up = mixedFloat32(rows * rank, rank * 7 + cols);
            // down's rows packed, or padded as the engine stores them
            const stride = rank % 2 === 0 ? cols : cols + 16;
            const down = mixedFloat32(rank * stride, rank * 11 + cols);
            if (rank === 4) up.set(EDGE_F32.subarray(0, Math.min(up.length, EDGE_F32.length)));
            const factors = { up, down, rank, cols, stride };
            const total = rows * cols;
            for (const [begin, count] of [
              [0, total],
              [Math.min(3, total - 1), Math.max(1, total - 5)],
              [cols, Math.min(cols + 19, total - cols)],
            ] as const) {
              const base = mixedFloat32(count, begin + count);
              for (const multiplier of [0.6, -1.25, 0]) {
                const context = `rank ${rank}, ${cols} columns, elements ${begin}..${begin + count}, × ${multiplier}`;
                const expected = new Float32Array(count);
                reference.addLowRankF32(base, factors, begin, multiplier, expected);
                const actual = new Float32Array(count);
                kernel.addLowRankF32(base, factors, begin, multiplier, actual);
                expectSameBits(actual, expected, 4, context);
                const inPlace = base.slice();
                kernel.addLowRankF32(inPlace, factors, begin, multiplier, inPlace);
                expectSameBits(inPlace, expected, 4, `${context}, in place`);
              }
            }
          }
        }
        const own = (values: Float32Array): Float32Array => {
          const bytes = kernel.allocate?.(values.byteLength);
          if (!bytes) return values.slice();
          const copy = new Float32Array(bytes.buffer, bytes.byteOffset, values.length);
          copy.set(values);
          return copy;
        };
        const factors = {
          up: own(mixedFloat32(64 * 32, 1)),
          down: own(mixedFloat32(32 * 1040, 2)),
          rank: 32,
          cols: 1024,
          stride: 1040,
        };
        const base = own(mixedFloat32(16384 + 13, 3));
        const expected = new Float32Array(base.length);
        reference.addLowRankF32(base, factors, 77, 0.375, expected);
        const actual = own(new Float32Array(base.length));
        kernel.addLowRankF32(base, factors, 77, 0.375, actual);
        expectSameBits(actual, expected, 4, "in the kernel's memory");
      },
    );

    it.skipIf(skip)(
      "fuses weighted sums for all 27 dtype combinations, odd lengths and unaligned views",
      () => {
        for (const aType of FLOAT_DTYPES) {
          for (const bType of FLOAT_DTYPES) {
            for (const outType of FLOAT_DTYPES) {
              for (const length of LENGTHS) {
                const inputs = [
                  [mixedEncoded(aType, length, length * 3 + 1), mixedEncoded(bType, length, length * 5 + 2)],
                  [
                    weightLikeEncoded(aType, length, length + 3),
                    weightLikeEncoded(bType, length, length + 4),
                  ],
                ] as const;
                const cases = inputs.flatMap((pair) =>
                  [0, 1, 0.3, 0.7, -0.25, 2.5].map((alpha) => [pair, alpha] as const),
                );
                for (const [[a, b], alpha] of cases) {
                  const context = `${aType} + ${bType} → ${outType}, length ${length}, alpha ${alpha}`;
                  const expected = new Uint8Array(length * floatDTypeBytes(outType));
                  reference.weightedSum(a, aType, b, bType, alpha, expected, outType);
                  const actual = new Uint8Array(expected.byteLength);
                  kernel.weightedSum(a, aType, b, bType, alpha, actual, outType);
                  expectSameBits(actual, expected, floatDTypeBytes(outType), context);
                  const shifted = viewAt(new Uint8Array(expected.byteLength), 1);
                  kernel.weightedSum(viewAt(a, 3), aType, viewAt(b, 1), bType, alpha, shifted, outType);
                  expectSameBits(shifted, expected, floatDTypeBytes(outType), `${context}, unaligned`);
                }
              }
            }
          }
        }
      },
    );

    it.skipIf(skip)(
      "nests weighted sums for all 81 dtype combinations, both operand orders, odd lengths and unaligned views",
      () => {
        const moved = ({ bytes, dtype }: EncodedArray, by: number) => ({ bytes: viewAt(bytes, by), dtype });
        for (const [aType, bType, cType, outType] of DTYPE_QUADRUPLES) {
          // the longest length (past the wasm staging region) only for the all-f16 GyozaMix case
          const allF16 = aType === "F16" && bType === "F16" && cType === "F16";
          for (const length of allF16 ? LENGTHS : LENGTHS.slice(0, -1)) {
            const [a, b, c] = [aType, bType, cType].map((dtype, index) => ({
              bytes:
                length % 2 === 0
                  ? weightLikeEncoded(dtype, length, length * 7 + index)
                  : mixedEncoded(dtype, length, length * 7 + index),
              dtype,
            })) as [EncodedArray, EncodedArray, EncodedArray];
            const size = floatDTypeBytes(outType);
            for (const [alpha, beta] of NESTED_WEIGHTS) {
              for (const innerFirst of [true, false]) {
                const context = `(${aType} + ${bType}) + ${cType} → ${outType}, length ${length}, alpha ${alpha}, beta ${beta}, inner ${innerFirst ? "first" : "second"}`;
                const expected = twoStepNested([a, b, c], alpha, beta, innerFirst, outType);
                const actual = { bytes: new Uint8Array(expected.byteLength), dtype: outType };
                kernel.nestedWeightedSum(a, b, alpha, c, beta, innerFirst, actual);
                expectSameBits(actual.bytes, expected, size, context);
                const shifted = { bytes: viewAt(new Uint8Array(expected.byteLength), 1), dtype: outType };
                kernel.nestedWeightedSum(
                  moved(a, 3),
                  moved(b, 1),
                  alpha,
                  moved(c, 2),
                  beta,
                  innerFirst,
                  shifted,
                );
                expectSameBits(shifted.bytes, expected, size, `${context}, unaligned`);
              }
            }
          }
        }
      },
    );

    it.skipIf(skip)("counts NaN and infinities like the reference, for every length and alignment", () => {
      for (const dtype of FLOAT_DTYPES) {
        for (const length of [...LENGTHS, 100_003]) {
          const bytes = mixedEncoded(dtype, length, length + 29);
          const context = `${dtype}, length ${length}`;
          expect(kernel.countNonFinite(bytes, dtype), context).toBe(reference.countNonFinite(bytes, dtype));
          expect(kernel.countNonFinite(viewAt(bytes, 1), dtype), `${context}, unaligned`).toBe(
            reference.countNonFinite(bytes, dtype),
          );
        }
        const specials = new Uint8Array(40_000 * floatDTypeBytes(dtype)).fill(0xff);
        expect(kernel.countNonFinite(specials, dtype), `${dtype}, all NaN`).toBe(40_000);
      }
    });
  });
}

describe("the WebAssembly kernel on buffers in its own memory (in place, no copies)", () => {
  let kernel: MergeKernel;
  beforeAll(async () => {
    kernel = await createWasmKernel();
  });
  /** A copy of `bytes` in the kernel's memory, `offset` bytes into a fresh buffer. */
  const inMemory = (bytes: Uint8Array, offset = 0): Uint8Array => {
    const view = kernel.allocate!(bytes.byteLength + offset)!.subarray(offset);
    view.set(bytes);
    return view;
  };
  const f32InMemory = (values: Float32Array, offset = 0): Float32Array => {
    const bytes = inMemory(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset * 4);
    return new Float32Array(bytes.buffer, bytes.byteOffset, values.length);
  };

  it("decodes, encodes and counts with the reference's bits for every length and alignment", () => {
    for (const length of LENGTHS) {
      for (const dtype of FLOAT_DTYPES) {
        const context = `${dtype}, length ${length}`;
        const encoded = mixedEncoded(dtype, length, length + 41);
        const expected = new Float32Array(length);
        reference.toFloat32(encoded, dtype, expected);
        const decoded = f32InMemory(new Float32Array(length), 1);
        kernel.toFloat32(inMemory(encoded, 2), dtype, decoded);
        expectSameBits(decoded, expected, 4, `decode ${context}`);
        const values = mixedFloat32(length, length + 43);
        const stored = new Uint8Array(length * floatDTypeBytes(dtype));
        reference.fromFloat32(values, dtype, stored);
        const target = inMemory(new Uint8Array(stored.byteLength), 2);
        kernel.fromFloat32(f32InMemory(values), dtype, target);
        expectSameBits(target, stored, floatDTypeBytes(dtype), `encode ${context}`);
        expect(kernel.countNonFinite(inMemory(encoded, 6), dtype), `count ${context}`).toBe(
          reference.countNonFinite(encoded, dtype),
        );
      }
    }
  });

  it("computes the f32 methods and the fused weighted sum with the reference's bits, in place", () => {
    for (const length of LENGTHS) {
      const [a, b, c] = [mixedFloat32(length, 3), mixedFloat32(length, 4), mixedFloat32(length, 5)];
      const [x, y, z] = [f32InMemory(a, 1), f32InMemory(b), f32InMemory(c, 3)];
      for (const alpha of [0.3, 0.7]) {
        const actual = f32InMemory(new Float32Array(length), 2);
        expectF32MethodsMatch(
          kernel,
          [a, b, c],
          [x, y, z],
          alpha,
          actual,
          `length ${length}, alpha ${alpha}`,
        );
      }
      for (const [aType, bType, outType] of [
        ["F16", "F16", "F16"],
        ["BF16", "F32", "F16"],
        ["F32", "F16", "BF16"],
      ] as const) {
        const context = `${aType} + ${bType} → ${outType}, length ${length}`;
        const [p, q] = [mixedEncoded(aType, length, 7), mixedEncoded(bType, length, 8)];
        const expected = new Uint8Array(length * floatDTypeBytes(outType));
        reference.weightedSum(p, aType, q, bType, 0.3, expected, outType);
        const actual = inMemory(new Uint8Array(expected.byteLength), 2);
        kernel.weightedSum(inMemory(p, 2), aType, inMemory(q), bType, 0.3, actual, outType);
        expectSameBits(actual, expected, floatDTypeBytes(outType), context);
      }
    }
  });

  it("splits large fused weighted sums across two threads with the same bits", () => {
    for (const [aType, bType, outType] of [
      ["F16", "F16", "F16"],
      ["BF16", "F32", "F16"],
      ["F32", "F16", "BF16"],
    ] as const) {
      const length = SPLIT_MIN_ELEMENTS * 2 + 12_345;
      const a = mixedEncoded(aType, length, 101);
      const b = mixedEncoded(bType, length, 202);
      const expected = new Uint8Array(length * floatDTypeBytes(outType));
      reference.weightedSum(a, aType, b, bType, 0.3, expected, outType);
      const actual = inMemory(new Uint8Array(expected.byteLength), 6);
      kernel.weightedSum(inMemory(a), aType, inMemory(b, 2), bType, 0.3, actual, outType);
      expectSameBits(actual, expected, floatDTypeBytes(outType), `${aType} + ${bType} → ${outType}`);
    }
  });

  it("splits large nested weighted sums across two threads with the same bits, in place", () => {
    for (const [aType, bType, cType, outType] of [
      ["F16", "F16", "F16", "F16"],
      ["BF16", "F32", "F16", "BF16"],
      ["F32", "F16", "BF16", "F32"],
    ] as const) {
      const length = SPLIT_MIN_ELEMENTS * 2 + 12_345;
      const data = [aType, bType, cType].map((dtype, index) => ({
        bytes: mixedEncoded(dtype, length, 303 + index),
        dtype,
      }));
      const expected = twoStepNested([data[0]!, data[1]!, data[2]!], 0.3, 0.6, false, outType);
      const [a, b, c] = data.map(({ bytes, dtype }, index) => ({ bytes: inMemory(bytes, 2 * index), dtype }));
      const actual = { bytes: inMemory(new Uint8Array(expected.byteLength), 6), dtype: outType };
      kernel.nestedWeightedSum(a!, b!, 0.3, c!, 0.6, false, actual);
      expectSameBits(
        actual.bytes,
        expected,
        floatDTypeBytes(outType),
        `(${aType} + ${bType}) + ${cType} → ${outType}`,
      );
    }
  });

  it("hands out memory up to its 1 GiB maximum and then none, so callers fall back to their own", () => {
    const taken: Uint8Array[] = [];
    for (let buffer = kernel.allocate!(256 << 20); buffer; buffer = kernel.allocate!(256 << 20))
      taken.push(buffer);
    expect(taken.length).toBeGreaterThanOrEqual(2);
    expect(taken.length).toBeLessThanOrEqual(4);
    expect(kernel.allocate!(64 << 10)).toBeDefined(); // smaller requests still fit in what is left
  });
});

describe("the TypeScript reference kernel", () => {
  it("counts exactly the NaN and infinite elements, checked against decoded values", () => {
    for (const dtype of FLOAT_DTYPES) {
      const bytes = mixedEncoded(dtype, 5003, 17);
      const values = new Float32Array(5003);
      reference.toFloat32(bytes, dtype, values);
      const expected = values.filter((value) => !Number.isFinite(value)).length;
      expect(expected, `${dtype} test data holds non-finite values`).toBeGreaterThan(0);
      expect(reference.countNonFinite(bytes, dtype), dtype).toBe(expected);
    }
  });

  it("gives the same bits fused as decode → weightedSumF32 → encode", () => {
    for (const [aType, bType, outType] of [
      ["F16", "F16", "F16"],
      ["BF16", "F16", "BF16"],
      ["F32", "BF16", "F16"],
    ] as [FloatDType, FloatDType, FloatDType][]) {
      const length = 20_001;
      const a = mixedEncoded(aType, length, 3);
      const b = mixedEncoded(bType, length, 4);
      const fused = new Uint8Array(length * floatDTypeBytes(outType));
      reference.weightedSum(a, aType, b, bType, 0.3, fused, outType);
      const x = new Float32Array(length);
      const y = new Float32Array(length);
      reference.toFloat32(a, aType, x);
      reference.toFloat32(b, bType, y);
      reference.weightedSumF32(x, y, 0.3, x);
      const stepwise = new Uint8Array(fused.byteLength);
      reference.fromFloat32(x, outType, stepwise);
      expectSameBits(fused, stepwise, floatDTypeBytes(outType), `${aType} + ${bType} → ${outType}`);
    }
  });

  it("gives the same bits nested as two weighted sums through an f32 intermediate, NaN and infinities included", () => {
    const length = EDGE_F32.length * EDGE_F32.length;
    // every pair of edge values as (a, c), with b the edge values again: NaN, ±Inf, subnormals, ties
    const a = new Float32Array(length);
    const b = new Float32Array(length);
    const c = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      a[i] = EDGE_F32[Math.floor(i / EDGE_F32.length)]!;
      b[i] = EDGE_F32[(i * 7) % EDGE_F32.length]!;
      c[i] = EDGE_F32[i % EDGE_F32.length]!;
    }
    const operands = [a, b, c].map((values) => ({
      bytes: new Uint8Array(values.buffer),
      dtype: "F32" as const,
    }));
    for (const outType of FLOAT_DTYPES) {
      for (const [alpha, beta] of [...NESTED_WEIGHTS, [0.5, 0.5]] as const) {
        for (const innerFirst of [true, false]) {
          const expected = twoStepNested(
            [operands[0]!, operands[1]!, operands[2]!],
            alpha,
            beta,
            innerFirst,
            outType,
          );
          const nested = { bytes: new Uint8Array(expected.byteLength), dtype: outType };
          reference.nestedWeightedSum(
            operands[0]!,
            operands[1]!,
            alpha,
            operands[2]!,
            beta,
            innerFirst,
            nested,
          );
          expectSameBits(
            nested.bytes,
            expected,
            floatDTypeBytes(outType),
            `${outType}, ${alpha}/${beta}, ${innerFirst}`,
          );
        }
      }
    }
  });

  it("lerps with one rounding at a tie where rounding through a double would round up", () => {
    const a = new Float32Array(new Uint32Array([0x3f800001]).buffer);
    const b = new Float32Array(new Uint32Array([0x4c000100]).buffer);
    const out = new Float32Array(1);
    reference.lerpF32(a, b, new Float32Array(new Uint32Array([0x26fffe00]).buffer)[0]!, out);
    expect(new Uint32Array(out.buffer)[0]!.toString(16)).toBe("3f800001");
  });

  it("stores every NaN the arithmetic makes as the canonical quiet NaN", () => {
    const a = new Float32Array(new Uint32Array([0xffc00001, 0x7f800000, 0x7f800000, 0xff800000]).buffer);
    const b = new Float32Array(new Uint32Array([0x3f800000, 0xff800000, 0x7fa00000, 0x7f800000]).buffer);
    const out = new Float32Array(4);
    reference.weightedSumF32(a, b, 0.5, out);
    expect(Array.from(new Uint32Array(out.buffer))).toEqual([0x7fc00000, 0x7fc00000, 0x7fc00000, 0x7fc00000]);
  });
});

describe("the reference kernel's fast f16 encoding", () => {
  it("equals f32BitsToF16Bits on every rounding boundary and on a sweep through the normal range", () => {
    const failures: string[] = [];
    const check = (bits: number): void => {
      if (f32BitsToF16BitsFast(bits) !== f32BitsToF16Bits(bits) && failures.length < 5) {
        failures.push(`0x${bits.toString(16)}: ${f32BitsToF16BitsFast(bits)} vs ${f32BitsToF16Bits(bits)}`);
      }
    };
    for (let exponent = 0; exponent < 256; exponent++) {
      for (let high = 0; high < 1024; high++) {
        const base = ((exponent << 23) | (high << 13)) >>> 0;
        for (const low of [0, 1, 0xfff, 0x1000, 0x1001, 0x1fff]) {
          check((base | low) >>> 0);
          check((base | low | 0x80000000) >>> 0);
        }
      }
    }
    for (let bits = 0x38000000; bits < 0x48000000; bits += 4099) check(bits);
    for (const bits of randomWords(1_000_000, 99)) check(bits);
    expect(failures).toEqual([]);
  });
});
