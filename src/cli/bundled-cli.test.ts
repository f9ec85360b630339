import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { IN_THREAD_MAX_BYTES } from "../hash/hash-file.js";
import { hashFile } from "../hash/index.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";

/**
 * The `gyoza` bin is bundled (scripts/bundle-cli.mjs: an entry and chunks loaded per command). These
 * runs go through it as a user would, so a bundling mistake (a path resolved from the wrong place, a
 * native package pulled in, a chunk missing) fails here: kernels, hashing workers with their BLAKE3
 * module, and the PNG renderer.
 */
const BIN = new URL("../../dist/cli/gyoza.cjs", import.meta.url).pathname;
const run = promisify(execFile);

let dir = "";
useTempDirWithHashCache("gyoza-bundle-", (path) => {
  dir = path;
});

async function gyoza(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [BIN, ...args], { env: process.env });
  return stdout;
}

describe("the bundled gyoza bin", () => {
  it("exists (npm run build writes it)", () => {
    expect(existsSync(BIN), `${BIN} is missing: run npm run build`).toBe(true);
  });

  it("synthesises, merges with each kernel, hashes and plots like the library does", async () => {
    const [a, b] = [join(dir, "a.safetensors"), join(dir, "b.safetensors")];
    await gyoza("synth", a, "--size", "micro", "--seed", "1");
    await gyoza("synth", b, "--size", "micro", "--seed", "2");
    const shas = new Set<string>();
    for (const kernel of ["native", "wasm", "js"]) {
      const out = join(dir, `m-${kernel}.safetensors`);
      const result = JSON.parse(
        await gyoza("merge", a, b, "--alpha", "COSINE", "--kernel", kernel, "-o", out, "--json"),
      ) as Record<string, unknown>;
      expect(JSON.stringify(result)).toContain(out);
      // where the time went: disjoint parts of the whole
      const { total, ...parts } = result.timings as Record<string, number>;
      expect(Object.keys(parts).sort()).toEqual(["compute", "finish", "inputs", "output"]);
      const sum = Object.values(parts).reduce((x, y) => x + y);
      expect(Math.min(...Object.values(parts))).toBeGreaterThanOrEqual(0);
      expect(sum).toBeLessThanOrEqual(total!);
      shas.add((await hashFile(out, { algorithms: ["autov3"], cacheDir: false })).autoV3Full!);
    }
    expect(shas.size).toBe(1);
    const human = await gyoza("merge", a, b, "-o", join(dir, "m-human.safetensors"));
    expect(human).toMatch(
      /^time [\d.]+ s: [\d.]+ s waiting for inputs, [\d.]+ s for output writes, [\d.]+ s computing, [\d.]+ s finishing/m,
    );
    // large enough for worker threads, which load their BLAKE3 module by path
    const big = join(dir, "big.bin");
    await writeFile(big, Buffer.alloc(IN_THREAD_MAX_BYTES + 4096, "gyoza"));
    for (const file of [a, big]) {
      const hashes = JSON.parse(await gyoza("hash", file, "--algo", "sha256,blake3", "--json")) as {
        sha256: string;
        blake3: string;
      }[];
      const expected = await hashFile(file, {
        algorithms: ["sha256", "blake3"],
        cacheDir: false,
        threads: 0,
      });
      expect([hashes[0]!.sha256, hashes[0]!.blake3], file).toEqual([expected.sha256, expected.blake3]);
    }
    const png = join(dir, "diff.png");
    await gyoza("diff", a, b, "--plot", png);
    expect((await readFile(png)).subarray(1, 4).toString()).toBe("PNG");
  }, 60_000);

  it("starts libuv with eight threads, or as many as UV_THREADPOOL_SIZE asks for", async () => {
    // the launcher beside a stand-in CLI that counts its threads once the pool has started
    await copyFile(BIN, join(dir, "gyoza.cjs"));
    await writeFile(
      join(dir, "gyoza.mjs"),
      'import { readdir, stat } from "node:fs/promises";\nawait stat(".");\nconsole.log((await readdir("/proc/self/task")).length);\n',
    );
    const threads = async (env: NodeJS.ProcessEnv) =>
      Number((await run(process.execPath, [join(dir, "gyoza.cjs")], { env })).stdout);
    const { UV_THREADPOOL_SIZE: _, ...unset } = process.env;
    const [byDefault, four, twelve] = await Promise.all([
      threads(unset),
      threads({ ...unset, UV_THREADPOOL_SIZE: "4" }),
      threads({ ...unset, UV_THREADPOOL_SIZE: "12" }),
    ]);
    expect(byDefault - four).toBe(4);
    expect(twelve - four).toBe(8);
  });
});
