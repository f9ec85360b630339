import { GyozaError, unknownIdError } from "../errors.js";
import { createJsKernel } from "./js-kernel.js";
import { KERNEL_NAMES, type KernelName, type MergeKernel } from "./merge-kernel.js";
import { createNativeKernel, nativeSimdAvailable } from "./native-kernel.js";
import { createWasmKernel, hasWasmSimd } from "./wasm-kernel.js";

export type KernelPreference = KernelName | "auto";

/** Environment variable that overrides the caller's kernel choice (e.g. to compare runs). */
export const KERNEL_ENV_VARIABLE = "GYOZA_KERNEL";

/**
 * Picks a merge kernel. "auto" takes the native addon when it is built and the CPU has AVX2 + F16C,
 * else WebAssembly SIMD when built and supported, else the TypeScript reference; all three give the
 * same bits, so the choice only changes speed. A named kernel that cannot load is an error.
 * `GYOZA_KERNEL` (native, wasm, js or auto) overrides `preference`.
 */
export async function loadKernel(
  preference: KernelPreference = "auto",
  env: NodeJS.ProcessEnv = process.env,
): Promise<MergeKernel> {
  const chosen = parsePreference(env[KERNEL_ENV_VARIABLE] || preference);
  switch (chosen) {
    case "native":
      return createNativeKernel();
    case "wasm":
      if (!hasWasmSimd()) throw new GyozaError("usage", "this JavaScript engine has no WebAssembly SIMD");
      return createWasmKernel();
    case "js":
      return createJsKernel();
    case "auto":
      return loadBestKernel();
  }
}

async function loadBestKernel(): Promise<MergeKernel> {
  try {
    if (nativeSimdAvailable()) return createNativeKernel();
  } catch {
    // built for another Node or broken: fall through to the portable kernels
  }
  if (hasWasmSimd()) {
    try {
      return await createWasmKernel();
    } catch {
      // not built: the reference kernel gives the same bits, only slower
    }
  }
  return createJsKernel();
}

function parsePreference(value: string): KernelPreference {
  const choices: readonly string[] = [...KERNEL_NAMES, "auto"];
  if (choices.includes(value)) return value as KernelPreference;
  throw unknownIdError("kernel", value, choices);
}
