import { GyozaError } from "../errors.js";
import type { BlockMemory } from "../io/direct-appender.js";
import type { DType } from "../io/dtype.js";
import { SafetensorsWriter } from "../io/safetensors/write-safetensors.js";
import { writeTorchCheckpoint } from "../io/torch/index.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { prefetch } from "./prefetch.js";

export type OutputFormat = "safetensors" | "ckpt";

/**
 * Output bytes computed only once the writer has room for them: `fill` writes them straight into the
 * writer's aligned write block, so the finished bytes are never copied from a buffer of their own.
 */
export interface DeferredChunk {
  readonly byteLength: number;
  /** Fills are split only at multiples of this (a chunk's element size). */
  readonly elementBytes: number;
  /** Computes bytes [offset, offset + target.byteLength) of the chunk into `target`. */
  fill(target: Uint8Array, offset: number): void;
  /** Called once, when the chunk is written or the write failed: gives back what the chunk holds. */
  release(): void;
}

/** Finished bytes, or bytes computed on demand. */
export type OutputChunk = Uint8Array | DeferredChunk;

/** A tensor of the output: its description and a producer of its bytes, in order, in any chunking. */
export interface OutputTensor {
  readonly key: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  chunks(): AsyncIterable<OutputChunk>;
}

/** The chunk's bytes in a buffer of their own. */
export function materialize(chunk: OutputChunk): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  try {
    const bytes = Buffer.allocUnsafeSlow(chunk.byteLength); // fully written by fill
    chunk.fill(bytes, 0);
    return bytes;
  } finally {
    chunk.release();
  }
}

export interface WriteOutputOptions {
  format: OutputFormat;
  /** safetensors only. */
  metadata?: Record<string, string>;
  /** safetensors only: write modelspec.hash_sha256 (the data sha256, computed while streaming). */
  selfHash?: boolean;
  onProgress?: ProgressListener;
  task?: string;
  /** Chunks produced ahead of the writer (bounds memory: depth × chunk size). */
  readAhead?: number;
  /** safetensors only: metadata placeholders → values (same length) known only once the data is written. */
  finalReplacements?: () => Promise<ReadonlyMap<string, string>>;
  /** Called with each chunk once it is written (to return pooled buffers). */
  release?: (chunk: Uint8Array) => void;
  /** safetensors only: memory for the O_DIRECT write blocks (the merge kernel's). */
  blockMemory?: BlockMemory;
}

export interface WriteOutputResult {
  bytes: number;
  /** sha256 of the safetensors data section (the file's AutoV3), when written as safetensors. */
  dataSha256?: string;
}

export function outputFormatOf(path: string): OutputFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith(".safetensors")) return "safetensors";
  if ([".ckpt", ".pt", ".pth", ".bin"].some((ext) => lower.endsWith(ext))) return "ckpt";
  throw new GyozaError("usage", "cannot tell the output format from the file name", {
    file: path,
    fix: "name the output *.safetensors (recommended) or *.ckpt",
  });
}

/**
 * Streams output tensors into a new checkpoint: produced chunks flow through a bounded read-ahead
 * into the writer, which writes a temp file and renames it into place only when complete.
 */
export async function writeOutput(
  path: string,
  tensors: readonly OutputTensor[],
  options: WriteOutputOptions,
): Promise<WriteOutputResult> {
  const onProgress = options.onProgress ?? noProgress;
  const byKey = new Map(tensors.map((t) => [t.key, t]));
  if (options.format === "ckpt") {
    const result = await writeTorchCheckpoint(
      path,
      tensors.map((tensor) => ({
        key: tensor.key,
        dtype: tensor.dtype,
        shape: tensor.shape,
        read: async () => {
          const parts: Uint8Array[] = [];
          for await (const chunk of tensor.chunks()) parts.push(materialize(chunk));
          return Buffer.concat(parts);
        },
      })),
      { onProgress },
    );
    return { bytes: result.bytesWritten };
  }
  const writer = await SafetensorsWriter.create(path, tensors, {
    ...(options.metadata ? { metadata: options.metadata } : {}),
    selfHash: options.selfHash ?? true,
    ...(options.blockMemory ? { blockMemory: options.blockMemory } : {}),
  });
  const totalBytes = writer.order.reduce((sum, t) => sum + t.byteLength, 0);
  try {
    onProgress({ type: "start", task: options.task ?? `write ${path}`, totalBytes });
    async function* allChunks(): AsyncGenerator<OutputChunk> {
      for (const planned of writer.order) yield* byKey.get(planned.key)!.chunks();
    }
    // Finished chunks are handed on as soon as they are produced: the writer copies them into its own
    // aligned blocks (written 4 MiB at a time), after which the buffer goes straight back to the pool.
    // Deferred chunks (their inputs read ahead) are computed into the blocks themselves.
    for await (const chunk of prefetch(allChunks(), options.readAhead ?? 4)) {
      if (chunk instanceof Uint8Array) {
        await writer.writeMany([chunk]);
        options.release?.(chunk);
      } else await writeDeferred(writer, chunk);
      onProgress({ type: "advance", bytes: chunk.byteLength });
    }

    const result = await writer.finish(
      options.finalReplacements ? await options.finalReplacements() : undefined,
    );
    onProgress({ type: "finish", task: options.task ?? `write ${path}` });
    return { bytes: result.bytes, dataSha256: result.dataSha256 };
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

/**
 * Computes a deferred chunk into the writer's blocks, a block's free part at a time. Where an element
 * would straddle two blocks (only with tensors out of the usual size order), or the file is not
 * written in blocks, that part is computed into a buffer and copied.
 */
export async function writeDeferred(writer: SafetensorsWriter, chunk: DeferredChunk): Promise<void> {
  try {
    let done = 0;
    while (done < chunk.byteLength) {
      const space = await writer.reserveAppend(chunk.byteLength - done);
      const fits = space ? space.byteLength - (space.byteLength % chunk.elementBytes) : 0;
      if (fits > 0) {
        chunk.fill(space!.subarray(0, fits), done);
        writer.commitAppend(fits);
        done += fits;
        continue;
      }
      if (space) writer.commitAppend(0);
      const n = space ? chunk.elementBytes : chunk.byteLength - done;
      const bytes = Buffer.allocUnsafeSlow(n); // fully written by fill
      chunk.fill(bytes, done);
      await writer.write(bytes);
      done += n;
    }
  } finally {
    chunk.release();
  }
}
