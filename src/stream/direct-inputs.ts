import type { Checkpoint } from "../io/tensor.js";

/** Bytes of a file range in the page cache now (the native addon's `cachedBytes`); -1 when unknown. */
export type CachedBytes = (fd: number, offset: number, length: number) => number;

/** A file with at most this share of its bytes in the page cache counts as cold. */
const COLD_MAX_CACHED_FRACTION = 0.25;

/**
 * Switches the inputs a merge or conversion streams to O_DIRECT reads (`FileByteSource.readDirectly`)
 * where the page cache would only cost: files that are cold (mostly not cached) and that nothing else
 * reads alongside (the caller leaves out an input it hashes at the same time, which the cache then
 * serves to both). Read through the cache, every input byte is copied into it and out again, about a
 * CPU-second per 2 GB on a small machine, on the two cores the merge arithmetic and the output's hash
 * need; read past it, the bytes land in the merge's own buffers, with reads that join neighbouring
 * tensors and run a few ahead (src/io/read-queue.ts). A file already cached (just downloaded, just
 * merged: an automix study merges the same inputs again and again) is read from the cache as before.
 * Without the native addon's probe nothing changes. Returns the paths now read directly.
 */
export async function readColdInputsDirectly(
  checkpoints: readonly Checkpoint[],
  cachedBytes: CachedBytes | undefined,
): Promise<Set<string>> {
  const direct = new Set<string>();
  if (!cachedBytes) return direct;
  for (const checkpoint of checkpoints) {
    const file = checkpoint.file;
    if (!file || file.size === 0) continue;
    const cached = cachedBytes(file.fd, 0, file.size);
    if (cached < 0 || cached > file.size * COLD_MAX_CACHED_FRACTION) continue;
    if (await file.readDirectly()) direct.add(checkpoint.path);
  }
  return direct;
}
