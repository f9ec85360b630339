#!/usr/bin/env node
// Compiles the WebAssembly SIMD merge kernel from wasm/kernels.ts (AssemblyScript) to
// build/kernels.wasm, where src/kernels/wasm-kernel.ts finds it from src/ and from dist/ alike.
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

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
    "simd",
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
