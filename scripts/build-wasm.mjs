#!/usr/bin/env node
// Compiles the WebAssembly SIMD merge kernel from wasm/kernels.ts (AssemblyScript) to
// build/kernels.wasm, where src/kernels/wasm-kernel.ts finds it from src/ and from dist/ alike.
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

/** 1 GiB: the most the kernel's memory may grow to (src/kernels/wasm-kernel.ts uses the same). */
const WASM_MAXIMUM_PAGES = 16384;
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const output = join(root, "build", "kernels.wasm");
// written next to the target and renamed into place, so a concurrent reader never sees half a file
const temporary = `${output}.${process.pid}.tmp`;
mkdirSync(dirname(output), { recursive: true });

const { error, stderr } = await asc.main(
  [
    join(root, "wasm", "kernels.ts"),
    "--outFile",
    temporary,
    "--optimizeLevel",
    "3",
    "--runtime",
    "stub",
    "--noAssert",
    "--enable",
    "simd,threads",
    // memory comes from the host, shared, so host buffers are worked on in place from any thread
    "--importMemory",
    "--sharedMemory",
    "--initialMemory",
    "1",
    "--maximumMemory",
    String(WASM_MAXIMUM_PAGES),
    "--use",
    "abort=",
  ],
  {},
);
if (error) {
  rmSync(temporary, { force: true });
  console.error(stderr.toString());
  console.error(`gyoza: building ${output} failed: ${error.message}`);
  process.exit(1);
}
renameSync(temporary, output);
