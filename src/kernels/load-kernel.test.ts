import { beforeAll, describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { loadKernel } from "./load-kernel.js";
import type { KernelName } from "./merge-kernel.js";
import { createNativeKernel, nativeKernelBuilt, nativeSimdAvailable } from "./native-kernel.js";
import { ensureWasmKernelBuilt, WASM_BUILD_TIMEOUT_MS } from "./test-support/ensure-wasm-built.js";
import { createWasmKernel } from "./wasm-kernel.js";

beforeAll(() => ensureWasmKernelBuilt(), WASM_BUILD_TIMEOUT_MS);

describe("loadKernel", () => {
  it("loads the kernel it is asked for", async () => {
    expect((await loadKernel("js", {})).name).toBe("js");
    expect((await loadKernel("wasm", {})).name).toBe("wasm");
  });

  it("prefers the native kernel when it is built and the CPU has AVX2 and F16C, else WebAssembly", async () => {
    const expected = nativeKernelBuilt() && nativeSimdAvailable() ? "native" : "wasm";
    expect((await loadKernel("auto", {})).name).toBe(expected);
    expect((await loadKernel(undefined, {})).name).toBe(expected);
  });

  it("lets GYOZA_KERNEL override the caller's choice", async () => {
    expect((await loadKernel("wasm", { GYOZA_KERNEL: "js" })).name).toBe("js");
    expect((await loadKernel("js", { GYOZA_KERNEL: "" })).name).toBe("js");
  });

  it("rejects an unknown kernel name with a suggestion", async () => {
    const error = await loadKernel("auto", { GYOZA_KERNEL: "wsam" }).catch((caught: unknown) => caught);
    expect(isGyozaError(error, "unknown-id")).toBe(true);
    expect((error as Error & { fix?: string }).fix).toContain('did you mean "wasm"');
  });

  it("fails with a fix line when a named kernel is not built", async () => {
    expect(() => createNativeKernel("best", "/nonexistent/gyoza_kernels.node")).toThrowError(/not built/);
    const error = await createWasmKernel("/nonexistent/kernels.wasm").catch((caught: unknown) => caught);
    expect(isGyozaError(error, "io")).toBe(true);
    expect((error as Error & { fix?: string }).fix).toContain("npm run build:wasm");
  });
});

describe("every kernel checks its arguments", () => {
  const names: KernelName[] = ["js", "wasm", ...(nativeKernelBuilt() ? (["native"] as const) : [])];
  it.each(names)("the %s kernel rejects buffers whose lengths disagree", async (name) => {
    const kernel = await loadKernel(name, {});
    const four = new Float32Array(4);
    expect(() => kernel.weightedSumF32(four, new Float32Array(3), 0.5, four)).toThrowError(
      /differ in length/,
    );
    expect(() => kernel.addDifferenceF32(four, four, new Float32Array(5), 0.5, four)).toThrowError(
      /differ in length/,
    );
    expect(() => kernel.toFloat32(new Uint8Array(7), "F16", four)).toThrowError(/holds 7 bytes/);
    expect(() => kernel.fromFloat32(four, "BF16", new Uint8Array(16))).toThrowError(/holds 16 bytes/);
    const halves = new Uint8Array(8);
    expect(() =>
      kernel.weightedSum(new Uint8Array(7), "F16", halves, "F16", 0.5, halves, "F16"),
    ).toThrowError(/holds 7 bytes/);
    expect(() => kernel.weightedSum(halves, "F16", halves, "F32", 0.5, halves, "F16")).toThrowError(
      /4 F32 elements need 16/,
    );
    expect(() => kernel.weightedSum(halves, "F64" as "F32", halves, "F16", 0.5, halves, "F16")).toThrowError(
      /not F64/,
    );
  });
});
