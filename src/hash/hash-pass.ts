import { Worker } from "node:worker_threads";
import { GyozaError } from "../errors.js";
import type { ByteSource } from "../io/byte-source.js";
import type { HashStream, RawDigests } from "./file-hashes.js";
import { hashWorkerSource } from "./hash-worker-source.js";
import { blake3Locations, laneDependencies } from "./lane-dependencies.js";
import { createLaneHasher } from "./lane-hasher.js";

/** Large reads keep syscalls and worker messages rare (≈120 per GB). */
export const CHUNK_BYTES = 8 * 1024 * 1024;
/** Chunks in flight: enough that a fast lane never waits for the reader while a slow one catches up. */
const RING_SLOTS = 6;
/**
 * CPU seconds per GB of each stream measured on this project's machines (SHA-256 with SHA-NI via
 * OpenSSL, zlib's folded CRC-32, native BLAKE3), used to balance streams across threads.
 */
const STREAM_COST: Record<HashStream, number> = { sha256: 0.7, autov3: 0.7, crc32: 0.15, blake3: 0.2 };

export interface HashPassOptions {
  streams: readonly HashStream[];
  autoV3Start: number;
  /** Worker threads; 0 hashes on the calling thread. */
  threads: number;
  /** Called with the byte count of each chunk every stream has finished. */
  onBytes?: (bytes: number) => void;
}

/** Reads `source` once, front to back, feeding every stream; returns their digests. */
export async function runHashPass(source: ByteSource, options: HashPassOptions): Promise<RawDigests> {
  if (options.streams.length === 0) return {};
  if (options.threads === 0) return hashOnThisThread(source, options);
  return hashWithWorkers(source, options, assignLanes(options.streams, options.threads));
}

/** Splits streams into at most `threads` lanes of similar cost (longest first, into the lightest lane). */
export function assignLanes(streams: readonly HashStream[], threads: number): HashStream[][] {
  const count = Math.max(1, Math.min(threads, streams.length));
  const lanes: { streams: HashStream[]; cost: number }[] = Array.from({ length: count }, () => ({
    streams: [],
    cost: 0,
  }));
  const byCost = [...streams].sort((a, b) => STREAM_COST[b] - STREAM_COST[a]);
  for (const stream of byCost) {
    const lightest = lanes.reduce((best, lane) => (lane.cost < best.cost ? lane : best));
    lightest.streams.push(stream);
    lightest.cost += STREAM_COST[stream];
  }
  return lanes.map((lane) => lane.streams);
}

async function hashOnThisThread(source: ByteSource, options: HashPassOptions): Promise<RawDigests> {
  const lane = createLaneHasher(options.streams, options.autoV3Start, laneDependencies());
  const chunkBytes = Math.min(CHUNK_BYTES, source.size);
  // Two buffers: the next read runs in the thread pool while this thread hashes the current chunk.
  const buffers = [new Uint8Array(chunkBytes), new Uint8Array(chunkBytes)];
  const readAt = (offset: number, index: number) => {
    const length = Math.min(chunkBytes, source.size - offset);
    return readChunk(source, buffers[index % 2]!.subarray(0, length), offset);
  };
  let pending = source.size > 0 ? readAt(0, 0) : undefined;
  for (let offset = 0, index = 0; pending; offset += chunkBytes, index++) {
    const chunk = await pending;
    const next = offset + chunkBytes;
    pending = next < source.size ? readAt(next, index + 1) : undefined;
    lane.update(chunk, offset);
    options.onBytes?.(chunk.byteLength);
  }
  return lane.digest();
}

async function hashWithWorkers(
  source: ByteSource,
  options: HashPassOptions,
  lanes: HashStream[][],
): Promise<RawDigests> {
  const slotBytes = Math.max(1, Math.min(CHUNK_BYTES, source.size));
  const ring = new SharedArrayBuffer(slotBytes * RING_SLOTS);
  const pool = new LanePool(ring, lanes, options.autoV3Start);
  try {
    for (let offset = 0, index = 0; offset < source.size; offset += slotBytes, index++) {
      const slot = index % RING_SLOTS;
      await pool.slotFree(slot);
      const length = Math.min(slotBytes, source.size - offset);
      await readChunk(source, new Uint8Array(ring, slot * slotBytes, length), offset);
      pool.dispatch(slot, slot * slotBytes, length, offset, () => options.onBytes?.(length));
    }
    return await pool.finish();
  } finally {
    await pool.terminate();
  }
}

type ChunkReader = { readInto(target: Uint8Array, offset: number): Promise<Uint8Array> };

/** Fills `target` from `offset`, without a copy when the source can read into a buffer. */
async function readChunk(source: ByteSource, target: Uint8Array, offset: number): Promise<Uint8Array> {
  const reader = source as Partial<ChunkReader>;
  if (typeof reader.readInto === "function") return reader.readInto(target, offset);
  target.set(await source.read(offset, target.byteLength));
  return target;
}

/** Worker threads, one per lane, sharing the ring; tracks which slots every lane has finished. */
class LanePool {
  private readonly workers: Worker[];
  private readonly remaining = new Array<number>(RING_SLOTS).fill(0);
  private readonly onFreed = new Array<(() => void) | undefined>(RING_SLOTS);
  private readonly waiters = new Map<number, () => void>();
  private readonly digests: RawDigests[] = [];
  private failure: Error | undefined;
  private closing = false;
  private finishWaiter: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(ring: SharedArrayBuffer, lanes: HashStream[][], autoV3Start: number) {
    const source = hashWorkerSource();
    const blake3 = blake3Locations();
    this.workers = lanes.map((streams) => {
      const worker = new Worker(source, { eval: true, workerData: { streams, autoV3Start, ring, blake3 } });
      worker.on("message", (message: WorkerMessage) => this.receive(message));
      worker.on("error", (error) => this.fail(error));
      worker.on("exit", (code) => {
        if (!this.closing) this.fail(new Error(`hash worker exited (${code})`));
      });
      return worker;
    });
  }

  async slotFree(slot: number): Promise<void> {
    this.throwIfFailed();
    if (this.remaining[slot] === 0) return;
    await new Promise<void>((resolve) => this.waiters.set(slot, resolve));
    this.throwIfFailed();
  }

  dispatch(slot: number, start: number, length: number, fileOffset: number, onFreed: () => void): void {
    this.remaining[slot] = this.workers.length;
    this.onFreed[slot] = onFreed;
    for (const worker of this.workers) worker.postMessage({ type: "chunk", slot, start, length, fileOffset });
  }

  async finish(): Promise<RawDigests> {
    this.throwIfFailed();
    const done = new Promise<void>((resolve, reject) => {
      this.finishWaiter = { resolve, reject };
    });
    for (const worker of this.workers) worker.postMessage({ type: "finish" });
    await done;
    return Object.assign({}, ...this.digests);
  }

  async terminate(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  private receive(message: WorkerMessage): void {
    if (message.type === "done") {
      const left = --this.remaining[message.slot]!;
      if (left > 0) return;
      this.onFreed[message.slot]?.();
      const waiter = this.waiters.get(message.slot);
      this.waiters.delete(message.slot);
      waiter?.();
    } else {
      this.digests.push(message.digests);
      if (this.digests.length === this.workers.length) this.finishWaiter?.resolve();
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = new GyozaError("io", `hashing failed in a worker thread: ${error.message}`, {
      cause: error,
    });
    for (const waiter of this.waiters.values()) waiter();
    this.waiters.clear();
    this.finishWaiter?.reject(this.failure);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

type WorkerMessage = { type: "done"; slot: number } | { type: "digests"; digests: RawDigests };
