import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { WASM_KERNEL_FILE } from "../kernel-files.js";

const SOURCE_FILE = fileURLToPath(new URL("../../../wasm/kernels.ts", import.meta.url));
const BUILD_SCRIPT = fileURLToPath(new URL("../../../scripts/build-wasm.mjs", import.meta.url));
/** Held while one test process builds; the others (vitest runs files in parallel) wait for it. */
const LOCK_DIR = `${WASM_KERNEL_FILE}.lock`;
/** A build takes seconds; a lock older than this was left by a killed process. */
const LOCK_WAIT_MS = 120_000;
/** For beforeAll: compiling with asc -O3 on a busy 2-core machine can take well over vitest's 10 s. */
export const WASM_BUILD_TIMEOUT_MS = 180_000;

function upToDate(): boolean {
  return existsSync(WASM_KERNEL_FILE) && statSync(WASM_KERNEL_FILE).mtimeMs >= statSync(SOURCE_FILE).mtimeMs;
}

function sleep(milliseconds: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, milliseconds);
}

/** Builds build/kernels.wasm when it is missing or older than its source, so tests never run a stale one. */
export function ensureWasmKernelBuilt(): void {
  const deadline = Date.now() + LOCK_WAIT_MS;
  mkdirSync(dirname(WASM_KERNEL_FILE), { recursive: true });
  while (!upToDate()) {
    try {
      mkdirSync(LOCK_DIR);
    } catch {
      if (Date.now() < deadline) {
        sleep(200);
        continue;
      }
    }
    try {
      if (!upToDate()) execFileSync(process.execPath, [BUILD_SCRIPT], { stdio: "inherit" });
    } finally {
      rmSync(LOCK_DIR, { recursive: true, force: true });
    }
  }
}
