import { readFile } from "node:fs/promises";
import { GyozaError } from "../errors.js";
import { WASM_KERNEL_FILE } from "./kernel-files.js";
import {
  createMergeKernel,
  type FloatDType,
  floatDTypeBytes,
  type KernelBackend,
  type MergeKernel,
} from "./merge-kernel.js";
import { WasmHelper } from "./wasm-helper.js";

/**
 * The parts of the WebAssembly JS API used here, typed locally: the project's TypeScript libs
 * (ES2022 + @types/node 20) do not declare the `WebAssembly` global.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** Exports of build/kernels.wasm (wasm/kernels.ts); it works on fixed regions of its own memory. */
interface WasmExports {
  memory: WasmMemory;
  chunkElements(): number;
  regionBase(): number;
  memoryBytesNeeded(): number;
  toFloat32(dtype: number, count: number): void;
  fromFloat32(dtype: number, count: number): void;
  weightedSumF32(w0: number, w1: number, count: number): void;
  lerpF32(weight: number, count: number): void;
  addDifferenceF32(alpha: number, count: number): void;
  weightedSum(aType: number, bType: number, outType: number, w0: number, w1: number, count: number): void;
  countNonFinite(dtype: number, count: number): number;
}

const DTYPE_CODES: Record<FloatDType, number> = { F16: 0, BF16: 1, F32: 2 };
const WASM_PAGE_BYTES = 65536;

/** Whether this JavaScript engine runs WebAssembly SIMD (a module using one v128 op validates). */
export function hasWasmSimd(): boolean {
  // (module (func (result v128) v128.const i32x4 0 0 0 0))
  const probe = new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
  ]);
  return wasmApi?.validate(probe) ?? false;
}

/** Loads the WebAssembly SIMD kernel from build/kernels.wasm. */
export async function createWasmKernel(file: string = WASM_KERNEL_FILE): Promise<MergeKernel> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    throw new GyozaError("io", "the WebAssembly kernel is not built", {
      file,
      fix: "run `npm run build:wasm`",
      cause,
    });
  }
  if (!wasmApi) throw new GyozaError("usage", "this JavaScript engine has no WebAssembly");
  const module = new wasmApi.Module(bytes);
  const instance = new wasmApi.Instance(module, {});
  return createMergeKernel(wasmBackend(instance.exports as unknown as WasmExports, new WasmHelper(module)));
}

function wasmBackend(wasm: WasmExports, helper: WasmHelper): KernelBackend {
  const missing = wasm.memoryBytesNeeded() - wasm.memory.buffer.byteLength;
  if (missing > 0) wasm.memory.grow(Math.ceil(missing / WASM_PAGE_BYTES));
  const memory = new Uint8Array(wasm.memory.buffer);
  const chunk = wasm.chunkElements();
  const base = wasm.regionBase();
  const regionBytes = chunk * 4;
  const [regionA, regionB, regionC, regionOut] = [0, 1, 2, 3].map((index) => base + index * regionBytes) as [
    number,
    number,
    number,
    number,
  ];

  /** Copies elements [start, start + count) of `bytes` (elements of `size` bytes) into a region. */
  const put = (bytes: Uint8Array, size: number, start: number, count: number, region: number): void => {
    memory.set(bytes.subarray(start * size, (start + count) * size), region);
  };
  const take = (bytes: Uint8Array, size: number, start: number, count: number): void => {
    bytes.set(memory.subarray(regionOut, regionOut + count * size), start * size);
  };
  const eachChunk = (total: number, step: (start: number, count: number) => void): void => {
    for (let start = 0; start < total; start += chunk) step(start, Math.min(chunk, total - start));
  };

  return {
    name: "wasm",
    toFloat32(src, dtype, out) {
      const size = floatDTypeBytes(dtype);
      const target = bytesOf(out);
      eachChunk(out.length, (start, count) => {
        put(src, size, start, count, regionA);
        wasm.toFloat32(DTYPE_CODES[dtype], count);
        take(target, 4, start, count);
      });
    },
    fromFloat32(src, dtype, out) {
      const source = bytesOf(src);
      eachChunk(src.length, (start, count) => {
        put(source, 4, start, count, regionA);
        wasm.fromFloat32(DTYPE_CODES[dtype], count);
        take(out, floatDTypeBytes(dtype), start, count);
      });
    },
    weightedSumF32(a, b, w0, w1, out) {
      const [x, y, target] = [bytesOf(a), bytesOf(b), bytesOf(out)];
      eachChunk(out.length, (start, count) => {
        put(x, 4, start, count, regionA);
        put(y, 4, start, count, regionB);
        wasm.weightedSumF32(w0, w1, count);
        take(target, 4, start, count);
      });
    },
    lerpF32(a, b, weight, out) {
      const [x, y, target] = [bytesOf(a), bytesOf(b), bytesOf(out)];
      eachChunk(out.length, (start, count) => {
        put(x, 4, start, count, regionA);
        put(y, 4, start, count, regionB);
        wasm.lerpF32(weight, count);
        take(target, 4, start, count);
      });
    },
    addDifferenceF32(a, b, c, alpha, out) {
      const [x, y, z, target] = [bytesOf(a), bytesOf(b), bytesOf(c), bytesOf(out)];
      eachChunk(out.length, (start, count) => {
        put(x, 4, start, count, regionA);
        put(y, 4, start, count, regionB);
        put(z, 4, start, count, regionC);
        wasm.addDifferenceF32(alpha, count);
        take(target, 4, start, count);
      });
    },
    weightedSum(a, aType, b, bType, w0, w1, out, outType) {
      const [aSize, bSize, outSize] = [
        floatDTypeBytes(aType),
        floatDTypeBytes(bType),
        floatDTypeBytes(outType),
      ];
      const [aCode, bCode, outCode] = [DTYPE_CODES[aType], DTYPE_CODES[bType], DTYPE_CODES[outType]];
      const front = (total: number) =>
        eachChunk(total, (start, count) => {
          put(a, aSize, start, count, regionA);
          put(b, bSize, start, count, regionB);
          wasm.weightedSum(aCode, bCode, outCode, w0, w1, count);
          take(out, outSize, start, count);
        });
      const total = a.byteLength / aSize;
      if (!helper.canSplit(total, [a, b, out])) return front(total);
      const call = { a, aSize, aType: aCode, b, bSize, bType: bCode, out, outSize, outType: outCode, w0, w1 };
      helper.split(call, total, front);
    },
    countNonFinite(bytes, dtype) {
      const size = floatDTypeBytes(dtype);
      let found = 0;
      eachChunk(bytes.byteLength / size, (start, count) => {
        put(bytes, size, start, count, regionA);
        found += wasm.countNonFinite(DTYPE_CODES[dtype], count);
      });
      return found;
    },
  };
}

/** The raw bytes of a float array: copies through them keep NaN payloads bit for bit. */
function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
