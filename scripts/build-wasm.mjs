#!/usr/bin/env node
// Compiles the WebAssembly SIMD merge kernel from wasm/kernels.ts (AssemblyScript) to
// build/kernels.wasm, where src/kernels/wasm-kernel.ts finds it from src/ and from dist/ alike.
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const output = join(root, "build", "kernels.wasm");
mkdirSync(dirname(output), { recursive: true });

const { error, stderr } = await asc.main(
  [
    join(root, "wasm", "kernels.ts"),
    "--outFile",
    output,
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
  console.error(stderr.toString());
  console.error(`gyoza: building ${output} failed: ${error.message}`);
  process.exit(1);
}
