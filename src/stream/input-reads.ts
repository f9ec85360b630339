import type { ByteRange, Prefetch, ReadAhead } from "../io/prefetch-file.js";
import type { Checkpoint } from "../io/tensor.js";
import { isFrontToBack, prefetchOutOfOrderReads } from "./prefetch-plan.js";

/** Bytes of a file range in the page cache now (the native addon's `cachedBytes`); -1 when unknown. */
export type CachedBytes = (fd: number, offset: number, length: number) => number;

/** A file with at most this share of its bytes in the page cache counts as cold. */
const COLD_MAX_CACHED_FRACTION = 0.25;

export interface InputReadOptions {
  /**
   * The inputs that may be read past the page cache: those nothing else reads alongside (a merge
   * leaves out an input it hashes at the same time, which the cache then serves to both).
   */
  directCandidates: readonly Checkpoint[];
  /** The page-cache probe (the native addon's); without it nothing is read directly. */
  cachedBytes?: CachedBytes;
  /** The kernel's read-ahead (the native addon's); without it nothing is prefetched. */
  readAhead?: ReadAhead;
}

export interface InputReads {
  /** Paths of the inputs now read past the page cache. */
  direct: Set<string>;
  /** Prefetches started: stop them once the output is streamed. */
  prefetches: Prefetch[];
}

/**
 * How a merge or a conversion reads each input file, once the output's order is known (`reads`: each
 * file's byte ranges in the order the output takes them, `plannedReads` / `convertedReads`):
 * - a cold file (mostly not in the page cache) read front to back, among `directCandidates`, is read
 *   past the cache (`FileByteSource.readDirectly`): through the cache every byte is copied in and out
 *   again, about a CPU-second per 2 GB on a small machine, on the two cores the merge arithmetic and
 *   the output's hash need, and the cached inputs evict everything else;
 * - a file read out of its order (a torch `.ckpt` written as safetensors) is prefetched into the cache
 *   along that order (`prefetchOutOfOrderReads`): its reads jump back and forth, and the kernel's deep
 *   read-ahead of 32 MiB pieces served them faster than direct reads of each range did (same VM,
 *   alternating cold runs: 4.6–6.3 s prefetched against 4.9–7.0 s direct);
 * - the rest (files already cached: just downloaded, or merged again and again by an automix study)
 *   are read through the cache with the kernel's own read-ahead.
 */
export async function prepareInputReads(
  reads: ReadonlyMap<string, readonly ByteRange[]>,
  options: InputReadOptions,
): Promise<InputReads> {
  const direct = new Set<string>();
  if (options.cachedBytes) {
    for (const checkpoint of options.directCandidates) {
      const ranges = reads.get(checkpoint.path);
      if (ranges && isFrontToBack(ranges) && (await readsCold(checkpoint, options.cachedBytes)))
        direct.add(checkpoint.path);
    }
  }
  return { direct, prefetches: prefetchOutOfOrderReads(reads, options.readAhead) };
}

/** Switches a cold checkpoint file to direct reads; false where it is cached or refuses O_DIRECT. */
async function readsCold(checkpoint: Checkpoint, cachedBytes: CachedBytes): Promise<boolean> {
  const file = checkpoint.file;
  if (!file || file.size === 0) return false;
  const cached = cachedBytes(file.fd, 0, file.size);
  if (cached < 0 || cached > file.size * COLD_MAX_CACHED_FRACTION) return false;
  return file.readDirectly();
}
