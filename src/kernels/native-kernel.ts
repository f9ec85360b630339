import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { GyozaError } from "../errors.js";
import { NATIVE_KERNEL_FILE } from "./kernel-files.js";
import { createMergeKernel, type FloatDType, type KernelBackend, type MergeKernel } from "./merge-kernel.js";

/** One kernel table of the addon (native/src/addon.c); dtypes travel as codes. */
interface NativeTable {
  toFloat32(src: Uint8Array, dtype: number, out: Float32Array): void;
  fromFloat32(src: Float32Array, dtype: number, out: Uint8Array): void;
  weightedSumF32(a: Float32Array, b: Float32Array, w0: number, w1: number, out: Float32Array): void;
  lerpF32(a: Float32Array, b: Float32Array, weight: number, out: Float32Array): void;
  addDifferenceF32(a: Float32Array, b: Float32Array, c: Float32Array, alpha: number, out: Float32Array): void;
  weightedSum(
    a: Uint8Array,
    aType: number,
    b: Uint8Array,
    bType: number,
    w0: number,
    w1: number,
    out: Uint8Array,
    outType: number,
  ): void;
  nestedWeightedSum(
    a: Uint8Array,
    aType: number,
    b: Uint8Array,
    bType: number,
    c: Uint8Array,
    cType: number,
    w0: number,
    w1: number,
    u: number,
    v: number,
    out: Uint8Array,
    outType: number,
  ): void;
  countNonFinite(src: Uint8Array, dtype: number): number;
  addLowRankF32(
    base: Float32Array,
    up: Float32Array,
    down: Float32Array,
    rank: number,
    cols: number,
    stride: number,
    begin: number,
    multiplier: number,
    out: Float32Array,
  ): void;
}

interface NativeAddon {
  /** Portable C, always present. */
  scalar: NativeTable;
  /** AVX2 + F16C, null when the build or the CPU lacks them. */
  simd: NativeTable | null;
  /** memmove (absent from addons built before it was added). */
  copyBytes?: (target: Uint8Array, source: Uint8Array) => void;
  /** readahead(2) on a worker thread (absent on systems without one and in older builds). */
  readAhead?: (fd: number, offset: number, length: number) => Promise<void>;
  /** Bytes of a file range in the page cache now (mincore(2)); -1 where it cannot tell. */
  cachedBytes?: (fd: number, offset: number, length: number) => number;
}

const DTYPE_CODES: Record<FloatDType, number> = { F16: 0, BF16: 1, F32: 2 };

/** Which of the addon's implementations to use: the best the CPU runs, or the portable one. */
export type NativeVariant = "best" | "scalar";

export function nativeKernelBuilt(file: string = NATIVE_KERNEL_FILE): boolean {
  return existsSync(file);
}

/** Loads the addon built by scripts/build-native.mjs; throws a GyozaError when it is not built. */
export function loadNativeAddon(file: string = NATIVE_KERNEL_FILE): NativeAddon {
  if (!nativeKernelBuilt(file)) {
    throw new GyozaError("io", "the native kernel is not built", {
      file,
      fix: "install a C compiler and run `npm run build:native`, or use the wasm kernel",
    });
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (cause) {
    throw new GyozaError("io", "the native kernel does not load in this Node", {
      file,
      fix: "rebuild it with `npm run build:native`",
      cause,
    });
  }
  // an addon built from older sources lacks the newest functions: refuse it whole rather than fail mid-merge
  if (typeof addon.scalar?.addLowRankF32 !== "function") {
    throw new GyozaError("io", "the native kernel was built from older sources than this gyoza", {
      file,
      fix: "rebuild it with `npm run build:native`",
    });
  }
  return addon;
}

/**
 * The addon's kernel read-ahead (fills the page cache from a file without copying it into the
 * process), or undefined where the addon is not built or has none: callers then read into a buffer.
 */
export function nativeReadAhead(file: string = NATIVE_KERNEL_FILE): NativeAddon["readAhead"] {
  return loadedAddon(file)?.readAhead;
}

/**
 * The addon's page-cache probe (how many bytes of a file range are cached, read from mincore(2)), or
 * undefined where the addon is not built or has none: then no input is read with O_DIRECT.
 */
export function nativeCachedBytes(file: string = NATIVE_KERNEL_FILE): NativeAddon["cachedBytes"] {
  return loadedAddon(file)?.cachedBytes;
}

/** The addon, or undefined where it is not built or does not load (its optional helpers then go unused). */
function loadedAddon(file: string): NativeAddon | undefined {
  if (!nativeKernelBuilt(file)) return undefined;
  try {
    return loadNativeAddon(file);
  } catch {
    return undefined;
  }
}

/** Whether this CPU runs the addon's AVX2 + F16C path. */
export function nativeSimdAvailable(file: string = NATIVE_KERNEL_FILE): boolean {
  return nativeKernelBuilt(file) && loadNativeAddon(file).simd !== null;
}

export function createNativeKernel(
  variant: NativeVariant = "best",
  file: string = NATIVE_KERNEL_FILE,
): MergeKernel {
  const addon = loadNativeAddon(file);
  const table = variant === "best" ? (addon.simd ?? addon.scalar) : addon.scalar;
  return createMergeKernel(nativeBackend(table, addon.copyBytes));
}

function nativeBackend(table: NativeTable, copyBytes: NativeAddon["copyBytes"]): KernelBackend {
  return {
    name: "native",
    ...(copyBytes ? { copy: copyBytes } : {}),
    toFloat32: (src, dtype, out) => table.toFloat32(src, DTYPE_CODES[dtype], out),
    fromFloat32: (src, dtype, out) => table.fromFloat32(src, DTYPE_CODES[dtype], out),
    weightedSumF32: (a, b, w0, w1, out) => table.weightedSumF32(a, b, w0, w1, out),
    lerpF32: (a, b, weight, out) => table.lerpF32(a, b, weight, out),
    addDifferenceF32: (a, b, c, alpha, out) => table.addDifferenceF32(a, b, c, alpha, out),
    weightedSum: (a, aType, b, bType, w0, w1, out, outType) =>
      table.weightedSum(a, DTYPE_CODES[aType], b, DTYPE_CODES[bType], w0, w1, out, DTYPE_CODES[outType]),
    nestedWeightedSum: (a, b, c, { w0, w1, u, v }, out) =>
      table.nestedWeightedSum(
        a.bytes,
        DTYPE_CODES[a.dtype],
        b.bytes,
        DTYPE_CODES[b.dtype],
        c.bytes,
        DTYPE_CODES[c.dtype],
        w0,
        w1,
        u,
        v,
        out.bytes,
        DTYPE_CODES[out.dtype],
      ),
    countNonFinite: (bytes, dtype) => table.countNonFinite(bytes, DTYPE_CODES[dtype]),
    addLowRankF32: (base, { up, down, rank, cols, stride }, begin, multiplier, out) =>
      table.addLowRankF32(base, up, down, rank, cols, stride, begin, multiplier, out),
  };
}
