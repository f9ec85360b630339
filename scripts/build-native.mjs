#!/usr/bin/env node
// Builds the native merge kernel (native/binding.gyp) with node-gyp, offline: the headers come from
// the running Node's own installation. Run by `npm install` ("install" script). A missing compiler or
// a failed build is not an error: gyoza then uses its WebAssembly kernel, and this says so in one line.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const logFile = join(nativeDir, "build", "build-native.log");

function nodeGypCommand() {
  // npm puts the path of its bundled node-gyp in npm_config_node_gyp for lifecycle scripts.
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
  ];
  const script = candidates.find((candidate) => candidate && existsSync(candidate));
  return script ? [process.execPath, script] : ["node-gyp"];
}

/** The Node installation prefix when it ships headers, so node-gyp does not try to download them. */
function nodeDir() {
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : undefined;
}

function fallBack(reason) {
  console.log(`gyoza: native kernel not built (${reason}); the WebAssembly kernel will be used.`);
  process.exit(0);
}

if (process.env.GYOZA_SKIP_NATIVE) fallBack("GYOZA_SKIP_NATIVE is set");

const [command, ...prefixArgs] = nodeGypCommand();
const headers = nodeDir();
const args = [
  ...prefixArgs,
  "rebuild",
  `--directory=${nativeDir}`,
  ...(headers ? [`--nodedir=${headers}`] : []),
];
const result = spawnSync(command, args, { cwd: root, encoding: "utf8", env: process.env });
mkdirSync(dirname(logFile), { recursive: true });
writeFileSync(
  logFile,
  `${command} ${args.join(" ")}\n${result.stdout ?? ""}${result.stderr ?? ""}${result.error ?? ""}`,
);
if (result.error) fallBack(`could not run node-gyp: ${result.error.message}`);
if (result.status !== 0) fallBack(`node-gyp failed, see ${logFile}`);
console.log("gyoza: native kernel built (native/build/Release/gyoza_kernels.node).");
