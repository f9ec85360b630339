import { execFileSync, spawnSync } from "node:child_process";
import { rm } from "node:fs/promises";

const CHILD = new URL("./io-floor-child.mjs", import.meta.url).pathname;

/**
 * The raw I/O floor of a merge or conversion: a Node process that reads every input front to back
 * while writing an output of the same size, all concurrently, fsync at the end; nothing is computed.
 * It runs as a child process, timed from spawn to exit, like the gyoza runs it is compared with, so
 * both pay a (cold) Node start-up; what gyoza spends beyond it is its own. `direct` writes the output
 * with O_DIRECT, as gyoza does for safetensors: no page-cache copy, so a lower (stricter) floor.
 */
export async function ioFloorSeconds(
  inputs: readonly string[],
  outputPath: string,
  outputBytes: number,
  direct = false,
): Promise<number> {
  const started = performance.now();
  const flags = direct ? ["--direct"] : [];
  const run = spawnSync(process.execPath, [CHILD, ...flags, outputPath, String(outputBytes), ...inputs], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const seconds = (performance.now() - started) / 1000;
  await rm(outputPath, { force: true });
  if (run.status !== 0) throw new Error(`the I/O floor failed: ${run.stderr?.toString() ?? run.error}`);
  return seconds;
}

/** Drops the page cache (root on Linux) so the next run reads from disk; false where not allowed. */
export function dropPageCache(): boolean {
  try {
    execFileSync("sh", ["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
