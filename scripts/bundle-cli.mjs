#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/main.js and everything it imports, npm packages included) into
// dist/cli/gyoza.mjs, the `gyoza` bin, and chunks beside it (dist/cli/gyoza-chunk-*.mjs). Node's ES
// module loader resolves, stats and reads each of the ~300 files of an unbundled start separately:
// measured here, `gyoza --version` starts in 0.24 s instead of 0.37 s with a cold page cache (0.20 s
// vs 0.26 s warm), paid by every command. The commands are imported on demand
// (src/cli/commands/index.ts) and split into chunks, so `gyoza merge` compiles the engine and not the
// web server, automix or the image generators: 1.8 of 2.9 MB.
// Packages with native binaries stay outside and load from node_modules as before.
// The bin itself is a small CommonJS launcher beside it, dist/cli/gyoza.cjs (see LAUNCHER).
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "dist", "cli");
// built into a folder of its own, then moved beside the launcher, the chunks first and the entry last,
// so a concurrent reader never sees half a file or an entry whose chunks are missing
const temporary = join(cli, `.bundle-${process.pid}.tmp`);
const CHUNK_PREFIX = "gyoza-chunk-";

/**
 * gyoza's own JSON modules (the architectures' key layouts: 0.8 MB), all imported by default import,
 * as `JSON.parse` of a string: V8 parses JSON text faster than the same data written as a JavaScript
 * object literal. Packages' JSON files keep esbuild's loader (a `require()` of one expects the object).
 */
const jsonAsText = {
  name: "json-as-text",
  setup(builder) {
    builder.onLoad({ filter: /\.json$/ }, (args) => {
      if (!args.path.startsWith(join(root, "dist") + sep)) return undefined;
      const text = JSON.stringify(JSON.parse(readFileSync(args.path, "utf8")));
      return { contents: `export default JSON.parse(${JSON.stringify(text)});`, loader: "js" };
    });
  },
};

let written;
try {
  const result = await build({
    entryPoints: { gyoza: join(cli, "main.js") },
    outdir: temporary,
    splitting: true,
    chunkNames: `${CHUNK_PREFIX}[hash]`,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // the sources' few non-ASCII characters (comments, a regex) would make V8 decode and hold all
    // of the bundle's text as UTF-16; escaped, it stays one byte per character
    charset: "ascii",
    plugins: [jsonAsText],
    metafile: true,
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
    // CommonJS packages inside the bundle call require(); give each ES module one
    banner: {
      js: "import { createRequire as __gyozaCreateRequire } from 'node:module'; const require = __gyozaCreateRequire(import.meta.url);",
    },
    logLevel: "warning",
  });
  written = Object.keys(result.metafile.outputs).map((path) => basename(path));
  for (const name of written.filter((name) => name.startsWith(CHUNK_PREFIX)))
    renameSync(join(temporary, name), join(cli, name));
  renameSync(join(temporary, "gyoza.mjs"), join(cli, "gyoza.mjs"));
} finally {
  rmSync(temporary, { recursive: true, force: true });
}
// chunks of earlier builds (their names are content hashes)
for (const name of readdirSync(cli)) {
  if (name.startsWith(CHUNK_PREFIX) && !written.includes(name)) rmSync(join(cli, name), { force: true });
}

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
