import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { copyFile, cp, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as sourceApi from "./index.js";
import { writeSyntheticCheckpoint } from "./synth/write-synthetic.js";

/**
 * gyoza as a user gets it: `npm pack`, the tarball unpacked into a fresh project's node_modules, then
 * `import … from "gyoza"` in a separate Node process and the README example compiled with tsc
 * against the installed types and run.
 *
 * Offline and fast on purpose, so not `npm install <tarball>`: that would resolve the dependencies
 * from the registry (or a cache that may lack them) and run the native build. The tarball is unpacked
 * with `tar` instead, and each *declared* dependency is linked to the copy this checkout already has
 * installed. Node resolves a linked package's own imports from its real path (so its dependencies are
 * found), while gyoza's files, under the temp project, see only the declared dependencies: an import
 * of an undeclared or dev-only package fails here as it would for a user. No install scripts run, so
 * no native kernel: the package picks the WebAssembly (or TypeScript) kernel, as it does wherever no
 * compiler is available.
 *
 * What gets packed: `npm test` does not build, so the checkout's dist/ is packed only when it is newer
 * than every source file (as after `npm ci`, whose `prepare` builds it). Otherwise the library is
 * compiled afresh into a temp copy of the package (`tsc --noCheck`, ≈7 s; the bundled CLI is not part
 * of the library), so the test never checks a stale build and never writes into the checkout's dist/.
 */
const ROOT = new URL("../", import.meta.url).pathname;
const run = promisify(execFile);
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");

let dir: string;
let project: string;
let packedFiles: string[];

/** Newest modification time of the sources that go into dist/ (tests and test support excluded). */
function newestSourceMtime(folder = join(ROOT, "src")): number {
  let newest = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "test-support") newest = Math.max(newest, newestSourceMtime(path));
    } else if (/\.(ts|json)$/.test(entry.name) && !entry.name.endsWith(".test.ts")) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

function builtDistIsFresh(): boolean {
  const built = ["dist/index.js", "dist/index.d.ts"].map((file) => join(ROOT, file));
  if (!built.every((file) => existsSync(file))) return false;
  return Math.min(...built.map((file) => statSync(file).mtimeMs)) > newestSourceMtime();
}

/** A copy of the package with the library compiled from the current sources. */
async function freshPackageFolder(): Promise<string> {
  const folder = join(dir, "package-source");
  await mkdir(join(folder, "build"), { recursive: true });
  for (const file of ["package.json", "README.md"]) await copyFile(join(ROOT, file), join(folder, file));
  if (existsSync(join(ROOT, "build/kernels.wasm")))
    await copyFile(join(ROOT, "build/kernels.wasm"), join(folder, "build/kernels.wasm"));
  await cp(join(ROOT, "assets"), join(folder, "assets"), { recursive: true });
  // --noCheck: type errors are `npm run typecheck`'s to report; here only the emitted files matter
  await run(
    process.execPath,
    [TSC, "-p", join(ROOT, "tsconfig.build.json"), "--noCheck", "--outDir", join(folder, "dist")],
    { cwd: ROOT },
  );
  return folder;
}

/** Runs Node in the temp project, as a user's script would run. */
async function node(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, args, {
    cwd: project,
    env: { ...process.env, GYOZA_CACHE_DIR: join(dir, "hash-cache"), GYOZA_KERNEL: "" },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-package-"));
  const packFrom = builtDistIsFresh() ? ROOT : await freshPackageFolder();
  // --ignore-scripts: `npm pack` would otherwise run `prepare`, a full build
  const { stdout } = await run(
    "npm",
    ["pack", "--ignore-scripts", "--json", "--pack-destination", dir, "--loglevel", "error"],
    { cwd: packFrom },
  );
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  packedFiles = packed!.files.map((file) => file.path);

  project = join(dir, "project");
  await mkdir(join(project, "node_modules"), { recursive: true });
  await writeFile(join(project, "package.json"), JSON.stringify({ private: true, type: "module" }));
  await run("tar", ["-xzf", join(dir, packed!.filename), "-C", join(project, "node_modules")]);
  await rename(join(project, "node_modules/package"), join(project, "node_modules/gyoza"));
  const manifest = JSON.parse(await readFile(join(project, "node_modules/gyoza/package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  for (const name of [...Object.keys(manifest.dependencies), "@types/node"]) {
    const link = join(project, "node_modules", name);
    await mkdir(dirname(link), { recursive: true });
    await symlink(join(ROOT, "node_modules", name), link, "dir");
  }
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A TypeScript user's type imports: public types resolve, internals do not. */
const TYPE_IMPORTS = `
import type {
  Checkpoint, FileHashes, GenerationInfo, GyozaErrorCode, InspectReport, MergeResult, ModelDiff,
  ProgressEvent, Recipe, Recovery, RunRecipeOptions, StoredTensor,
} from "gyoza";
// @ts-expect-error: only "gyoza" itself is exported, not the files behind it
import type { ReadQueue } from "gyoza/dist/io/read-queue.js";
export const code: GyozaErrorCode = "interrupted";
export type Used = [Checkpoint, FileHashes, GenerationInfo, InspectReport, MergeResult, ModelDiff,
  ProgressEvent, Recipe, Recovery, RunRecipeOptions, StoredTensor, ReadQueue];
`;

describe("the packed gyoza package, installed into a fresh project", () => {
  it("holds the library build with its types, and no tests or test support", () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        "package.json",
        "dist/index.js",
        "dist/index.d.ts",
        // the grid image's label font (src/preview/grid-render.ts) and its licence
        "assets/fonts/DejaVuSans.ttf",
        "assets/fonts/LICENSE-DejaVu.txt",
      ]),
    );
    expect(packedFiles.filter((file) => /\.test\.|test-support\//.test(file))).toEqual([]);
  });

  it("imports by name with exactly the public values of src/index.ts, and nothing deeper", async () => {
    const { stdout } = await node([
      "--input-type=module",
      "-e",
      'const api = await import("gyoza"); console.log(JSON.stringify(Object.keys(api).sort()));',
    ]);
    expect(JSON.parse(stdout)).toEqual(Object.keys(sourceApi).sort());
    const deep = node(["--input-type=module", "-e", 'await import("gyoza/dist/io/read-queue.js");']);
    await expect(deep).rejects.toMatchObject({
      stderr: expect.stringMatching(/ERR_PACKAGE_PATH_NOT_EXPORTED/),
    });
  });

  it("inspects and hashes a checkpoint through the installed package", async () => {
    const model = join(project, "tiny.safetensors");
    await writeSyntheticCheckpoint(model, { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: 7 });
    const script = `
      import { hashFile, inspectCheckpoint, openCheckpoint } from "gyoza";
      const checkpoint = await openCheckpoint("tiny.safetensors");
      const report = await inspectCheckpoint(checkpoint);
      await checkpoint.close();
      const hashes = await hashFile("tiny.safetensors", { cacheDir: false });
      console.log(JSON.stringify({ architecture: report.architecture.id, sha256: hashes.sha256 }));`;
    const { stdout } = await node(["--input-type=module", "-e", script]);
    const sha256 = createHash("sha256")
      .update(await readFile(model))
      .digest("hex")
      .toUpperCase();
    expect(JSON.parse(stdout)).toEqual({ architecture: "sd1", sha256 });
  });

  it("type-checks the README's library example and type imports against the installed types, and runs the example", async () => {
    // the files the example expects, as `npm run demo` leaves them
    await mkdir(join(project, "out"));
    const models = [
      "models/anime-detail.safetensors",
      "models/composition.safetensors",
      "models/texture-tuned.safetensors",
    ];
    for (const [seed, file] of models.entries()) {
      await mkdir(dirname(join(project, file)), { recursive: true });
      await writeSyntheticCheckpoint(join(project, file), {
        layout: "sd1-ldm",
        size: "micro",
        dtype: "F32",
        seed,
      });
    }
    await mkdir(join(project, "vae"));
    await writeSyntheticCheckpoint(
      join(project, "vae/kl-f8-anime2.ckpt"),
      { layout: "sd1-ldm", size: "micro", dtype: "F32", seed: 9, vaeOnly: true },
      "ckpt",
    );
    await copyFile(join(ROOT, "src/recipe/examples/gyozamix.yaml"), join(project, "gyozamix.yaml"));
    await copyFile(join(ROOT, "examples/library.ts"), join(project, "library.ts"));
    await writeFile(join(project, "types.ts"), TYPE_IMPORTS);
    // a user's strict NodeNext setup: resolves "gyoza" through its exports map and "types" condition
    const tsconfig = {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        types: ["node"],
        strict: true,
        skipLibCheck: true,
        outDir: "compiled",
      },
      files: ["library.ts", "types.ts"],
    };
    await writeFile(join(project, "tsconfig.json"), JSON.stringify(tsconfig));
    await run(process.execPath, [TSC, "-p", "tsconfig.json"], {
      cwd: project,
    }).catch((error) => {
      throw new Error(`tsc: ${(error as { stdout: string }).stdout}`);
    });

    const { stdout } = await node(["compiled/library.js"]);
    const output = join(project, "out/gyozamix-fp16.safetensors");
    const sha256 = createHash("sha256")
      .update(await readFile(output))
      .digest("hex")
      .toUpperCase();
    expect(stdout).toContain("Stable Diffusion 1");
    expect(stdout).toContain(`wrote ${output}`);
    expect(stdout).toContain(`SHA256 ${sha256}`);
  });
});
