import { open } from "node:fs/promises";
import type { Checkpoint } from "./tensor.js";

/**
 * Brings a file into the page cache front to back, ahead of a reader that takes it out of order. A
 * torch `.ckpt` stores its tensors in the model's module order, while a safetensors output is
 * written in the reference order (dtype, then name): merged straight, its reads jump back and forth
 * across the input and a cold disk serves them at a fraction of its sequential speed (two 2.1 GB
 * fp16 `.ckpt` → safetensors, cold: 2.5–3.2 s waiting for inputs, 1.0–1.3 s with this started as
 * the inputs open; README, Benchmarks). The merge's own reads then find the bytes in the cache. It
 * reads the whole file, also ranges the merge skips (a weight of exactly 0 or 1 reads one input
 * only), so it is stopped once the output is streamed. With the native addon's `readAhead`
 * (readahead(2)) the kernel fills the cache and no byte enters the process; without it the file is
 * read into one small reused buffer, which costs a copy of every byte (same 2-core VM, cold,
 * `.ckpt` → safetensors merge: 3.0–3.15 s without a prefetch, 3.15–3.25 s copying, 2.45–2.8 s with
 * readahead once the inputs' headers no longer wait behind it).
 *
 * Best effort: any error just ends the prefetch (the merge's own reads report real ones).
 */
export interface Prefetch {
  /** Resolves with the bytes read once the file is read to its end, stopped, or failed. */
  readonly done: Promise<number>;
  /** Stops reading (at the next buffer) and closes the file; resolves with the bytes read. */
  stop(): Promise<number>;
}

/** 4 MiB per read: few calls, and little next to the merge's own 32 MiB ring. */
const PREFETCH_BUFFER_BYTES = 4 << 20;
/** With a kernel read-ahead: bytes asked for per call, and how many such ranges may be in flight. */
const READ_AHEAD_BYTES = 32 << 20;
const READ_AHEAD_WINDOW = 2;

/**
 * Asks the kernel to bring a byte range of an open file into the page cache without copying it into
 * the process (readahead(2); the native addon's `readAhead`). Resolves once the reads are submitted.
 */
export type ReadAhead = (fd: number, offset: number, length: number) => Promise<void>;

export interface PrefetchOptions {
  /** Bytes per read when the file is read into a buffer (no `readAhead`). */
  bufferBytes?: number;
  /** When given, the page cache is filled by the kernel, paced to the disk; no byte is copied. */
  readAhead?: ReadAhead;
}

export function prefetchFile(path: string, options: PrefetchOptions = {}): Prefetch {
  let stopped = false;
  let bytes = 0;
  const run = (async () => {
    const handle = await open(path, "r");
    try {
      if (options.readAhead) {
        // keep READ_AHEAD_WINDOW ranges submitted; reading the last byte of the oldest waits for its
        // I/O, so the prefetch runs at the disk's pace instead of queueing the whole file at once
        // (which would hold up the merge's own reads and the output's writes behind it)
        const size = (await handle.stat()).size;
        const probe = Buffer.alloc(1);
        let asked = 0;
        while (!stopped && bytes < size) {
          while (asked < size && asked - bytes < READ_AHEAD_WINDOW * READ_AHEAD_BYTES) {
            const length = Math.min(READ_AHEAD_BYTES, size - asked);
            await options.readAhead(handle.fd, asked, length);
            asked += length;
          }
          const end = Math.min(bytes + READ_AHEAD_BYTES, size);
          await handle.read(probe, 0, 1, end - 1);
          bytes = end;
        }
        return;
      }
      const buffer = Buffer.allocUnsafeSlow(options.bufferBytes ?? PREFETCH_BUFFER_BYTES);
      while (!stopped) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, bytes);
        if (bytesRead === 0) break;
        bytes += bytesRead;
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
 * Prefetches the inputs a safetensors output reads out of their file order: torch checkpoints
 * (whose storages follow the model's module order). A `.ckpt` output follows the first input's
 * layout instead, so its inputs are read front to back already and need none.
 */
export function prefetchOutOfOrderInputs(
  outputFormat: "safetensors" | "ckpt",
  inputs: readonly Pick<Checkpoint, "path" | "format">[],
  readAhead?: ReadAhead,
): Prefetch[] {
  if (outputFormat !== "safetensors") return [];
  const paths = new Set(inputs.filter((input) => input.format !== "safetensors").map((input) => input.path));
  return [...paths].map((path) => prefetchFile(path, readAhead ? { readAhead } : {}));
}

export async function stopPrefetches(prefetches: readonly Prefetch[]): Promise<void> {
  await Promise.all(prefetches.map((prefetch) => prefetch.stop()));
}
