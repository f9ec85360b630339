import { GyozaError } from "../errors.js";
import type { BlockMemory } from "../io/direct-appender.js";
import type { DType } from "../io/dtype.js";
import { SafetensorsWriter } from "../io/safetensors/write-safetensors.js";
import { writeTorchCheckpoint } from "../io/torch/index.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { prefetch } from "./prefetch.js";

export type OutputFormat = "safetensors" | "ckpt";

/** A tensor of the output: its description and a producer of its bytes, in order, in any chunking. */
export interface OutputTensor {
  readonly key: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  chunks(): AsyncIterable<Uint8Array>;
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
          for await (const chunk of tensor.chunks()) parts.push(chunk);
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
    async function* allChunks(): AsyncGenerator<Uint8Array> {
      for (const planned of writer.order) yield* byKey.get(planned.key)!.chunks();
    }
    // Each chunk is handed on as soon as it is produced: the writer copies it into its own aligned
    // blocks (written 4 MiB at a time), after which the chunk's buffer goes straight back to the pool.
    for await (const chunk of prefetch(allChunks(), options.readAhead ?? 4)) {
      await writer.writeMany([chunk]);
      onProgress({ type: "advance", bytes: chunk.byteLength });
      options.release?.(chunk);
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
