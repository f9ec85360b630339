import { execFileSync } from "node:child_process";
import { open, rm } from "node:fs/promises";

/**
 * The raw I/O floor of a merge or conversion: read every input front to back while writing an
 * output of the same size, all concurrently, fsync at the end. Nothing is computed.
 */
export async function ioFloorSeconds(
  inputs: readonly string[],
  outputPath: string,
  outputBytes: number,
): Promise<number> {
  const chunk = 16 << 20;
  const started = performance.now();
  const readAll = async (path: string) => {
    const handle = await open(path, "r");
    const buffer = Buffer.alloc(chunk);
    try {
      while ((await handle.read(buffer, 0, chunk, null)).bytesRead > 0);
    } finally {
      await handle.close();
    }
  };
  const writeAll = async () => {
    const handle = await open(outputPath, "w");
    const buffer = Buffer.alloc(chunk, 0x5a);
    try {
      for (let done = 0; done < outputBytes; done += chunk)
        await handle.write(buffer, 0, Math.min(chunk, outputBytes - done));
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  await Promise.all([...inputs.map(readAll), writeAll()]);
  const seconds = (performance.now() - started) / 1000;
  await rm(outputPath, { force: true });
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
