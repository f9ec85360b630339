import { open } from "node:fs/promises";

/**
 * Brings ranges of a file (the whole file by default) into the page cache, in a given order, ahead of
 * a reader that takes them out of the file's order (see stream/prefetch-plan.ts: a torch `.ckpt`
 * written as safetensors). The reader's own reads then find the bytes in the cache. The kernel fills
 * the cache (the native addon's `readAhead`, readahead(2)) and no byte enters the process: reading
 * them through a buffer instead cost a copy of every byte and more than it saved (same 2-core VM,
 * cold, `.ckpt` → safetensors merge: 3.0–3.15 s without a prefetch, 3.15–3.25 s copying), so without
 * the addon nothing is prefetched. It is stopped once the output is streamed, so it never competes
 * with the output's last writes and fsync.
 *
 * Best effort: any error just ends the prefetch (the reader's own reads report real ones).
 */
export interface Prefetch {
  /** Resolves with the bytes read once the file is read to its end, stopped, or failed. */
  readonly done: Promise<number>;
  /** Stops reading (at the next buffer) and closes the file; resolves with the bytes read. */
  stop(): Promise<number>;
}

/** Bytes asked of the kernel per call at most, and how many may be in flight. */
const READ_AHEAD_BYTES = 32 << 20;
const READ_AHEAD_WINDOW_BYTES = 2 * READ_AHEAD_BYTES;
/** Ranges this close are prefetched as one (the bytes between them come along). */
const JOIN_GAP_BYTES = 64 << 10;

/**
 * Asks the kernel to bring a byte range of an open file into the page cache without copying it into
 * the process (readahead(2); the native addon's `readAhead`). Resolves once the reads are submitted.
 */
export type ReadAhead = (fd: number, offset: number, length: number) => Promise<void>;

/** Bytes [offset, offset + length) of a file. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface PrefetchOptions {
  /** Fills the page cache, paced to the disk (see `ReadAhead`). */
  readAhead: ReadAhead;
  /**
   * The ranges to bring in, in the order they are wanted (a merge's reads of this file, in the order
   * it makes them); the whole file, front to back, by default. Ranges past the end are cut off.
   */
  ranges?: readonly ByteRange[];
}

export function prefetchFile(path: string, options: PrefetchOptions): Prefetch {
  let stopped = false;
  let bytes = 0;
  const run = (async () => {
    const handle = await open(path, "r");
    try {
      const size = (await handle.stat()).size;
      const pieces = piecesOf(options.ranges ?? [{ offset: 0, length: size }], size, READ_AHEAD_BYTES);
      // keep READ_AHEAD_WINDOW_BYTES submitted; reading the last byte of the oldest piece waits for
      // its I/O, so the prefetch runs at the disk's pace instead of queueing the whole file at once
      // (which would hold up the merge's own reads and the output's writes behind it)
      const probe = Buffer.alloc(1);
      const submitted: ByteRange[] = [];
      let inFlight = 0;
      let next = 0;
      while (!stopped && (next < pieces.length || submitted.length > 0)) {
        while (
          next < pieces.length &&
          (submitted.length === 0 || inFlight + pieces[next]!.length <= READ_AHEAD_WINDOW_BYTES)
        ) {
          const piece = pieces[next++]!;
          await options.readAhead(handle.fd, piece.offset, piece.length);
          submitted.push(piece);
          inFlight += piece.length;
        }
        const oldest = submitted.shift()!;
        await handle.read(probe, 0, 1, oldest.offset + oldest.length - 1);
        inFlight -= oldest.length;
        bytes += oldest.length;
      }
    } finally {
      await handle.close();
    }
  })().then(
    () => bytes,
    () => bytes,
  );
  return {
    done: run,
    stop() {
      stopped = true;
      return run;
    },
  };
}

/**
 * `ranges` cut to the file, each joined to the run before it where it lies within JOIN_GAP_BYTES of
 * that run, on either side (the zip records between two tensors of a torch file; a module's tensors,
 * stored in module order and taken in name order), then split into pieces of at most `pieceBytes`.
 */
export function piecesOf(ranges: readonly ByteRange[], size: number, pieceBytes: number): ByteRange[] {
  const joined: { offset: number; end: number }[] = [];
  for (const range of ranges) {
    const offset = Math.max(0, range.offset);
    const end = Math.min(size, range.offset + range.length);
    if (end <= offset) continue;
    const last = joined.at(-1);
    if (last && offset <= last.end + JOIN_GAP_BYTES && end >= last.offset - JOIN_GAP_BYTES) {
      last.offset = Math.min(last.offset, offset);
      last.end = Math.max(last.end, end);
    } else joined.push({ offset, end });
  }
  const pieces: ByteRange[] = [];
  for (const { offset, end } of joined) {
    for (let at = offset; at < end; at += pieceBytes)
      pieces.push({ offset: at, length: Math.min(pieceBytes, end - at) });
  }
  return pieces;
}

export async function stopPrefetches(prefetches: readonly Prefetch[]): Promise<void> {
  await Promise.all(prefetches.map((prefetch) => prefetch.stop()));
}
