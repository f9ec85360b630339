import { fileURLToPath } from "node:url";

/**
 * Where the built kernels live, relative to the package root. This file sits at the same depth in
 * src/kernels/ (vitest) and dist/kernels/ (the published build), so one relative path serves both.
 */
const PACKAGE_ROOT = new URL("../../", import.meta.url);

/** Built by `npm run build:wasm` (scripts/build-wasm.mjs) from wasm/kernels.ts. */
export const WASM_KERNEL_FILE = fileURLToPath(new URL("build/kernels.wasm", PACKAGE_ROOT));

/** Built by the install script (scripts/build-native.mjs) from native/. */
export const NATIVE_KERNEL_FILE = fileURLToPath(
  new URL("native/build/Release/gyoza_kernels.node", PACKAGE_ROOT),
);
