import { execFileSync, spawnSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { totalmem } from "node:os";

const CHILD = new URL("./io-floor-child.mjs", import.meta.url).pathname;
const TOUCH = new URL("./touch-memory.mjs", import.meta.url).pathname;

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

/**
 * Puts every timed run on the same footing, then drops the page cache: first a child process touches
 * `bytes` of memory (at most 3/4 of RAM) and exits, so the pages the next run fills (page cache, its
 * own buffers) are ones the machine has used recently. On a VM that hands free memory back to its host
 * (free page reporting, as on this project's Firecracker machines) the first touch of returned memory
 * costs about 3 CPU-seconds per GB in the guest kernel: without this, whichever run touches more
 * memory than the one before it pays that (seen as a 2-3× spread in the same command's system time),
 * which would charge the VM's memory policy to the floor or to gyoza depending on the order of runs.
 * Returns false where the page cache cannot be dropped.
 */
export function coldStart(bytes: number): boolean {
  const touch = Math.min(bytes, Math.floor(totalmem() * 0.75));
  const run = spawnSync(process.execPath, [TOUCH, String(touch)], { stdio: "ignore" });
  if (run.status !== 0) throw new Error(`touching ${touch} bytes of memory failed (${run.status})`);
  return dropPageCache();
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
