/**
 * All seven hashes in gyoza's one pass against `sha256sum` alone, on the same file in the same run.
 *
 *   npm run bench:hash                      # a 2 GiB random file in a temp dir
 *   npm run bench:hash -- FILE [--rounds N] # an existing file
 *
 * Cold rounds (page cache dropped before every run) when allowed (root on Linux), then warm rounds
 * (the file read once first); where the cache cannot be dropped it says so and runs warm only.
 * Each side's best of N rounds is reported, as both share the machine with whatever else runs.
 */
import { execFile } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, open, readFile, rm, stat } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { blake3Implementation, hashFile } from "../src/hash/index.js";
import { coldStart, dropPageCache } from "./io-floor.js";

const run = promisify(execFile);
/** About the size of an SD 1.5 fp16 checkpoint. */
const GENERATED_FILE_BYTES = 2 * 1024 ** 3;
const WRITE_CHUNK_BYTES = 64 * 1024 * 1024;
const DEFAULT_ROUNDS = 3;
const CLOCK_TICKS_PER_SECOND = 100;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const roundsAt = args.indexOf("--rounds");
  const rounds = roundsAt >= 0 ? Number(args.splice(roundsAt, 2)[1]) : DEFAULT_ROUNDS;
  let file = args[0];
  let tempDir: string | undefined;
  try {
    if (!file) {
      tempDir = await mkdtemp(join(tmpdir(), "gyoza-bench-hash-"));
      file = join(tempDir, "random.bin");
      process.stdout.write(`writing ${gib(GENERATED_FILE_BYTES)} of random bytes to ${file}\n`);
      await writeRandomFile(file, GENERATED_FILE_BYTES);
    }
    const size = (await stat(file)).size;
    const canDrop = dropPageCache();
    process.stdout.write(
      `${file}: ${gib(size)}, ${availableParallelism()} cores, BLAKE3 ${blake3Implementation()}, best of ${rounds}\n`,
    );
    if (canDrop) await compare(file, size, rounds, "cold (page cache dropped before every run)", true);
    else process.stdout.write("the page cache could not be dropped (needs root on Linux): warm runs only\n");
    await readThrough(file);
    await compare(file, size, rounds, "warm (file in the page cache)", false);
  } finally {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  }
}

async function compare(file: string, size: number, rounds: number, label: string, cold: boolean) {
  process.stdout.write(`${label}:\n`);
  let baseline = { wall: Number.POSITIVE_INFINITY, cpu: Number.NaN };
  let gyoza = { wall: Number.POSITIVE_INFINITY, cpu: Number.NaN };
  for (let round = 1; round <= rounds; round++) {
    if (cold) coldStart(size);
    const sha256sum = await measured(() => run("sha256sum", [file], { maxBuffer: 1 << 20 }));
    if (cold) coldStart(size);
    const ours = await measured(() => hashFile(file, { cacheDir: false }));
    if (sha256sum.wall < baseline.wall) baseline = sha256sum;
    if (ours.wall < gyoza.wall) gyoza = ours;
    process.stdout.write(
      `  round ${round}: sha256sum ${describe(size, sha256sum)}; gyoza all hashes ${describe(size, ours)}\n`,
    );
  }
  process.stdout.write(
    `  best: sha256sum ${rate(size, baseline.wall)}; gyoza SHA256+AutoV1+AutoV2+AutoV3+BLAKE3+CRC32 ` +
      `${rate(size, gyoza.wall)}: ${(baseline.wall / gyoza.wall).toFixed(2)}x sha256sum\n`,
  );
  if (Number.isFinite(baseline.cpu)) {
    // Wall times mean little on a busy machine; CPU seconds say what an idle one would do.
    // gyoza spreads its four streams over min(cores, 4) balanced threads; sha256sum uses one.
    const threads = Math.min(availableParallelism(), 4);
    process.stdout.write(
      `  CPU seconds: sha256sum ${baseline.cpu.toFixed(2)}, gyoza ${gyoza.cpu.toFixed(2)} over ${threads} threads; ` +
        `on idle cores about ${(baseline.cpu / (gyoza.cpu / threads)).toFixed(2)}x sha256sum\n`,
    );
  }
}

interface Measurement {
  wall: number;
  /** CPU seconds, user + system, of this process's threads or of the child; NaN where unknown. */
  cpu: number;
}

/** Wall and CPU time of `action`: this process's own CPU, plus that of children it waited for. */
async function measured(action: () => Promise<unknown>): Promise<Measurement> {
  const ownBefore = process.cpuUsage();
  const childrenBefore = await childrenCpuSeconds();
  const start = performance.now();
  await action();
  const wall = (performance.now() - start) / 1000;
  const own = process.cpuUsage(ownBefore);
  const children = (await childrenCpuSeconds()) - childrenBefore;
  return { wall, cpu: (own.user + own.system) / 1e6 + children };
}

/** cutime + cstime from /proc/self/stat (Linux; clock ticks, 100 per second on every common kernel). */
async function childrenCpuSeconds(): Promise<number> {
  try {
    const fields = (await readFile("/proc/self/stat", "utf8")).split(") ")[1]!.split(" ");
    return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, "w");
  try {
    const chunk = new Uint8Array(WRITE_CHUNK_BYTES);
    for (let written = 0; written < bytes; written += chunk.byteLength) {
      const part = chunk.subarray(0, Math.min(chunk.byteLength, bytes - written));
      randomFillSync(part);
      await handle.write(part);
    }
  } finally {
    await handle.close();
  }
}

async function readThrough(path: string): Promise<void> {
  for await (const _ of createReadStream(path, { highWaterMark: WRITE_CHUNK_BYTES })) {
  }
}

const describe = (bytes: number, m: Measurement) =>
  `${seconds(m.wall)} (${rate(bytes, m.wall)}, ${m.cpu.toFixed(2)} CPU s)`;
const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
const seconds = (value: number) => `${value.toFixed(2)} s`;
const rate = (bytes: number, time: number) => `${(bytes / time / 1e9).toFixed(2)} GB/s`;

main().catch((error: unknown) => {
  process.stderr.write(`bench:hash failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = 1;
});
