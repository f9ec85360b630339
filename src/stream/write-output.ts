import { throwIfAborted } from "../errors.js";
import type { BlockMemory } from "../io/direct-appender.js";
import type { DType } from "../io/dtype.js";
import type { OutputFormat } from "../io/output-format.js";
import { type Prefetch, stopPrefetches } from "../io/prefetch-file.js";
import { SafetensorsWriter } from "../io/safetensors/write-safetensors.js";
import type { TensorStreamWriter } from "../io/tensor-stream-writer.js";
import { TorchCheckpointWriter } from "../io/torch/index.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { STREAM_RING_BYTES } from "./buffer-pool.js";

export type { OutputFormat };

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

/** A chunk whose inputs are being read: its reads started when it was taken from `chunks()`. */
export interface PendingChunk {
  /** Bytes of memory the chunk holds until written (its reads): bounds how far ahead the writer reads. */
  readonly holds: number;
  readonly ready: Promise<OutputChunk>;
}

/**
 * A tensor of the output: its description and its bytes, in order, in any chunking. `chunks()` is
 * lazy: taking the next chunk starts its reads, so the writer reads as far ahead as its budget allows,
 * across tensors, with many reads in flight at once.
 */
export interface OutputTensor {
  readonly key: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  chunks(): Iterable<PendingChunk>;
}

export interface WriteOutputOptions {
  format: OutputFormat;
  /** safetensors only. */
  metadata?: Record<string, string>;
  /** safetensors only: write modelspec.hash_sha256 (the data sha256, computed while streaming). */
  selfHash?: boolean;
  onProgress?: ProgressListener;
  task?: string;
  /** Bytes of input the writer reads ahead of what it writes (READ_AHEAD_BYTES by default). */
  readAheadBytes?: number;
  /**
   * Chooses how the inputs are read (src/stream/input-reads.ts), given the keys in the order they will
   * be written, once the output is created and before any input is read: switches cold files read
   * front to back to direct reads, and starts prefetching the files read out of order. The prefetches
   * it returns are stopped once every chunk is written, so they never compete with the output's last
   * writes and fsync, or when the write fails.
   */
  prepareReads?: (order: readonly string[]) => Promise<readonly Prefetch[]>;
  /** safetensors only: metadata placeholders → values (same length) known only once the data is written. */
  finalReplacements?: () => Promise<ReadonlyMap<string, string>>;
  /** Called with each chunk once it is written (to return pooled buffers). */
  release?: (chunk: Uint8Array) => void;
  /**
   * ckpt only: where each tensor lies in the main input (its byte offset there). The storages are
   * written in that order, so the input is read front to back; a safetensors file's order is fixed.
   */
  inputOrder?: ReadonlyMap<string, number>;
  /** Memory for the O_DIRECT write blocks (the merge kernel's). */
  blockMemory?: BlockMemory;
  /**
   * Checked between chunks and before the rename: once it is aborted, the temp file is removed and
   * the write rejects with an "interrupted" GyozaError.
   */
  signal?: AbortSignal;
}

export interface WriteOutputResult {
  bytes: number;
  /** sha256 of the safetensors data section (the file's AutoV3), when written as safetensors. */
  dataSha256?: string;
  /** Where the write's time went. */
  timings?: WriteTimings;
}

/**
 * Where a streamed write's wall time went, in seconds: tells a disk that cannot keep up (time spent
 * waiting) from a kernel that cannot (time spent computing). Only the writing loop's own waits count:
 * reads, block writes and hashing otherwise run alongside it.
 */
export interface WriteTimings {
  /**
   * Waiting for input chunks: their reads, and what runs as they arrive (dtype conversions, and the
   * whole-tensor methods such as cosine, TIES or slerp, which compute once a tensor is read).
   */
  inputs: number;
  /** Waiting for the output: a free write block, or the write of a finished chunk. */
  output: number;
  /** Computing merged bytes into the write blocks. */
  compute: number;
  /** After the last chunk: the last block, the hashes, the header patch, fsync and rename. */
  finish: number;
}

export { outputFormatOf } from "../io/output-format.js";

/** Where each tensor lies in its input file (`WriteOutputOptions.inputOrder`). */
export function inputOrderOf(
  tensors: ReadonlyMap<string, { readonly byteOffset: number }>,
): ReadonlyMap<string, number> {
  return new Map([...tensors].map(([key, tensor]) => [key, tensor.byteOffset]));
}

/**
 * Streams output tensors into a new checkpoint: produced chunks flow through a bounded read-ahead
 * into the writer, which writes a temp file and renames it into place only when complete. Both
 * formats take the same path: aligned O_DIRECT blocks that deferred chunks are computed into.
 */
export async function writeOutput(
  path: string,
  tensors: readonly OutputTensor[],
  options: WriteOutputOptions,
): Promise<WriteOutputResult> {
  const onProgress = options.onProgress ?? noProgress;
  const byKey = new Map(tensors.map((t) => [t.key, t]));
  const blockMemory = options.blockMemory ? { blockMemory: options.blockMemory } : {};
  // a .ckpt's storages follow the main input (else the order safetensors uses): read front to back
  const writer =
    options.format === "ckpt"
      ? await TorchCheckpointWriter.create(path, tensors, {
          dataOrder: options.inputOrder ?? "reference",
          ...blockMemory,
        })
      : await SafetensorsWriter.create(path, tensors, {
          ...(options.metadata ? { metadata: options.metadata } : {}),
          selfHash: options.selfHash ?? true,
          ...blockMemory,
        });
  const totalBytes = writer.order.reduce((sum, t) => sum + t.byteLength, 0);
  const prefetches: Prefetch[] = [];
  try {
    prefetches.push(...((await options.prepareReads?.(writer.order.map((planned) => planned.key))) ?? []));
    onProgress({ type: "start", task: options.task ?? `write ${path}`, totalBytes });
    function* allChunks(): Generator<PendingChunk> {
      for (const planned of writer.order) yield* byKey.get(planned.key)!.chunks();
    }
    // Chunks are taken (their reads started) up to the read-ahead budget ahead of the one being
    // written. Finished chunks are copied into the writer's aligned blocks (written 4 MiB at a time),
    // after which the buffer goes straight back to the pool; deferred chunks are computed into the
    // blocks themselves.
    const ahead = new ReadAhead(allChunks(), options.readAheadBytes ?? READ_AHEAD_BYTES);
    const clock = new WriteClock();
    try {
      // checked between chunks, never between taking one and writing it: all taken are written or drained
      throwIfAborted(options.signal, path);
      for (let pending = ahead.next(); pending; pending = ahead.next()) {
        const waiting = performance.now();
        const chunk = await pending.ready;
        clock.add("inputs", waiting);
        if (chunk instanceof Uint8Array) {
          const writing = performance.now();
          await writer.writeMany([chunk]);
          clock.add("output", writing);
          options.release?.(chunk);
        } else await writeDeferred(writer, chunk, clock);
        ahead.done(pending);
        onProgress({ type: "advance", bytes: chunk.byteLength });
        throwIfAborted(options.signal, path);
      }
    } catch (error) {
      await ahead.drain(options.release);
      throw error;
    }

    await stopPrefetches(prefetches);
    const finishing = performance.now();
    let result: { bytes: number; dataSha256?: string };
    if (writer instanceof TorchCheckpointWriter) {
      throwIfAborted(options.signal, path);
      result = await writer.finish();
    } else {
      const replacements = options.finalReplacements ? await options.finalReplacements() : undefined;
      throwIfAborted(options.signal, path);
      result = await writer.finish(replacements);
    }
    clock.add("finish", finishing);
    onProgress({ type: "finish", task: options.task ?? `write ${path}` });
    return {
      bytes: result.bytes,
      ...(result.dataSha256 ? { dataSha256: result.dataSha256 } : {}),
      timings: clock.seconds,
    };
  } catch (error) {
    await writer.abort();
    throw error;
  } finally {
    await stopPrefetches(prefetches);
  }
}

/**
 * Computes a deferred chunk into the writer's blocks, a block's free part at a time. Where an element
 * would straddle two blocks (only with tensors out of the usual size order), or the file is not
 * written in blocks, that part is computed into a buffer and copied.
 */
export async function writeDeferred(
  writer: TensorStreamWriter,
  chunk: DeferredChunk,
  clock = new WriteClock(),
): Promise<void> {
  try {
    let done = 0;
    while (done < chunk.byteLength) {
      const waiting = performance.now();
      const space = await writer.reserveAppend(chunk.byteLength - done);
      clock.add("output", waiting);
      const fits = space ? space.byteLength - (space.byteLength % chunk.elementBytes) : 0;
      if (fits > 0) {
        const computing = performance.now();
        chunk.fill(space!.subarray(0, fits), done);
        clock.add("compute", computing);
        writer.commitAppend(fits);
        done += fits;
        continue;
      }
      if (space) writer.commitAppend(0);
      const n = space ? chunk.elementBytes : chunk.byteLength - done;
      const bytes = Buffer.allocUnsafeSlow(n); // fully written by fill
      const computing = performance.now();
      chunk.fill(bytes, done);
      clock.add("compute", computing);
      const writing = performance.now();
      await writer.write(bytes);
      clock.add("output", writing);
      done += n;
    }
  } finally {
    chunk.release();
  }
}

/** Adds up the writing loop's waits and computing (WriteTimings). */
class WriteClock {
  readonly seconds: WriteTimings = { inputs: 0, output: 0, compute: 0, finish: 0 };

  /** Adds the time since `started` (a performance.now() reading) to `what`. */
  add(what: keyof WriteTimings, started: number): void {
    this.seconds[what] += (performance.now() - started) / 1000;
  }
}

/**
 * Input bytes read ahead of the chunk being written: several reads in flight on every input, across
 * tensors (a model has hundreds of small ones, each a read). Half the buffer pool's stream ring, so
 * one more range always fits in it; twice this cost ~30 MB more peak RSS and was not measurably faster.
 */
export const READ_AHEAD_BYTES = STREAM_RING_BYTES / 2;
/** Chunks taken ahead at most (many small tensors hold little memory but cost a read each). */
const READ_AHEAD_CHUNKS = 64;

/** Takes chunks from a lazy sequence (starting their reads) while the ones taken hold less than the budget. */
class ReadAhead {
  private readonly queue: PendingChunk[] = [];
  private held = 0;
  private exhausted = false;

  constructor(
    private readonly source: Iterator<PendingChunk>,
    private readonly budget: number,
  ) {}

  /** The next chunk in order (taking more behind it), or undefined at the end. */
  next(): PendingChunk | undefined {
    this.top();
    return this.queue.shift();
  }

  /** The chunk is written: its memory no longer counts against the budget. */
  done(pending: PendingChunk): void {
    this.held -= pending.holds;
  }

  /** After a failure: waits for the reads still in flight and gives their buffers back. */
  async drain(release?: (chunk: Uint8Array) => void): Promise<void> {
    const left = this.queue.splice(0);
    for (const result of await Promise.allSettled(left.map((pending) => pending.ready))) {
      if (result.status !== "fulfilled") continue;
      if (result.value instanceof Uint8Array) release?.(result.value);
      else result.value.release();
    }
  }

  private top(): void {
    while (
      !this.exhausted &&
      this.queue.length < READ_AHEAD_CHUNKS &&
      (this.queue.length === 0 || this.held < this.budget)
    ) {
      const next = this.source.next();
      if (next.done) {
        this.exhausted = true;
        return;
      }
      next.value.ready.catch(() => {}); // awaited in turn; no unhandled rejection meanwhile
      this.queue.push(next.value);
      this.held += next.value.holds;
    }
  }
}
