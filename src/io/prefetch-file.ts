import { open } from "node:fs/promises";
import type { Checkpoint } from "./tensor.js";

/**
 * Reads a file front to back into one small reused buffer, only so that the page cache holds it
 * ahead of a reader that takes it out of order. A torch `.ckpt` stores its tensors in the model's
 * module order, while a safetensors output is written in the reference order (dtype, then name):
 * merged straight, its reads jump back and forth across the input and a cold disk serves them at a
 * fraction of its sequential speed (two 2.1 GB fp16 `.ckpt` → safetensors, cold: 2.5–3.2 s waiting
 * for inputs, 1.0–1.3 s with this started as the inputs open; README, Benchmarks). The merge's own
 * reads then find the bytes in the cache. It reads the whole file, also ranges the merge skips (a
 * weight of exactly 0 or 1 reads one input only), so it is stopped once the output is streamed.
 * Nothing is kept in process memory beyond the buffer.
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

export function prefetchFile(path: string, bufferBytes = PREFETCH_BUFFER_BYTES): Prefetch {
  let stopped = false;
  let bytes = 0;
  const run = (async () => {
    const handle = await open(path, "r");
    try {
      const buffer = Buffer.allocUnsafeSlow(bufferBytes);
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
): Prefetch[] {
  if (outputFormat !== "safetensors") return [];
  const paths = new Set(inputs.filter((input) => input.format !== "safetensors").map((input) => input.path));
  return [...paths].map((path) => prefetchFile(path));
}

export async function stopPrefetches(prefetches: readonly Prefetch[]): Promise<void> {
  await Promise.all(prefetches.map((prefetch) => prefetch.stop()));
}
