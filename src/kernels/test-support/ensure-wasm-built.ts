import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { WASM_KERNEL_FILE } from "../kernel-files.js";

const SOURCE_FILE = fileURLToPath(new URL("../../../wasm/kernels.ts", import.meta.url));
const BUILD_SCRIPT = fileURLToPath(new URL("../../../scripts/build-wasm.mjs", import.meta.url));

/** Builds build/kernels.wasm when it is missing or older than its source, so tests never run a stale one. */
export function ensureWasmKernelBuilt(): void {
  if (existsSync(WASM_KERNEL_FILE) && statSync(WASM_KERNEL_FILE).mtimeMs >= statSync(SOURCE_FILE).mtimeMs)
    return;
  execFileSync(process.execPath, [BUILD_SCRIPT], { stdio: "inherit" });
}
