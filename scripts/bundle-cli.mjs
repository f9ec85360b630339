#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/main.js and everything it imports, npm packages included) into
// one file, dist/cli/gyoza.mjs, the `gyoza` bin. Node's ES module loader resolves, stats and reads
// each of the ~300 files of an unbundled start separately: measured here, `gyoza --version` starts
// in 0.24 s instead of 0.37 s with a cold page cache (0.20 s vs 0.26 s warm), paid by every command.
// Packages with native binaries stay outside and load from node_modules as before.
// The bin itself is a small CommonJS launcher beside it, dist/cli/gyoza.cjs (see LAUNCHER).
import { renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const output = join(root, "dist", "cli", "gyoza.mjs");
// written next to the target and renamed into place, so a concurrent reader never sees half a file
const temporary = `${output}.${process.pid}.tmp`;

await build({
  entryPoints: [join(root, "dist", "cli", "main.js")],
  outfile: temporary,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // fastify (gyoza serve only) is imported on first use and stays outside too: bundled, its ~2 MB
  // made every command's start ~40 ms slower (measured: --version 0.29-0.34 s → 0.33-0.40 s).
  external: [
    "@napi-rs/blake-hash",
    "@resvg/resvg-js",
    "better-sqlite3",
    "sharp",
    "fastify",
    "@fastify/static",
    // bullmq and ioredis (gyoza worker, distributed automix) likewise: imported on first use
    "bullmq",
    "ioredis",
    // onnxruntime-node (optional; the automix ONNX scorer) is a native addon, loaded on first use
    "onnxruntime-node",
  ],
  // CommonJS packages inside the bundle call require(); give the ES module one
  banner: {
    js: "import { createRequire as __gyozaCreateRequire } from 'node:module'; const require = __gyozaCreateRequire(import.meta.url);",
  },
  logLevel: "warning",
});
renameSync(temporary, output);

// libuv sizes its thread pool (every file read, write and fsync runs on it) when it is first used, and
// for an ES module entry that is before the module's first line: Node reads the file through it. A
// CommonJS entry runs first, so it can still choose. Four threads (the default) are too few for a
// merge: two input reads, output block writes that can block for tens of ms while the disk flushes,
// and the final fsync. In cold A+B probes here, eight threads (with ten write blocks instead of six,
// in that probe) took the median from 4.6 s to 4.0 s; `npm run bench:merge` with eight threads and
// six blocks then gave native 1.00× its floor against 1.23× before (the disk's noise is ±30 %).
const LAUNCHER = `#!/usr/bin/env node
// The gyoza bin (written by scripts/bundle-cli.mjs): sizes libuv's thread pool, then starts the CLI.
process.env.UV_THREADPOOL_SIZE ??= "8";
import("./gyoza.mjs");
`;
const launcher = join(root, "dist", "cli", "gyoza.cjs");
writeFileSync(`${launcher}.${process.pid}.tmp`, LAUNCHER, { mode: 0o755 });
renameSync(`${launcher}.${process.pid}.tmp`, launcher);
