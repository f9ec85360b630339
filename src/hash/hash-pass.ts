import { Worker } from "node:worker_threads";
import { GyozaError } from "../errors.js";
import type { ByteSource } from "../io/byte-source.js";
import type { HashStream, RawDigests } from "./file-hashes.js";
import { hashWorkerSource } from "./hash-worker-source.js";
import { blake3Locations, laneDependencies } from "./lane-dependencies.js";
import { createLaneHasher } from "./lane-hasher.js";

/** Reads small enough to stay in a core's cache between the copy and the hashing, large enough to keep syscalls rare. */
export const READ_BYTES = 1024 * 1024;
/** Workers report progress this often (≈15 messages per GB). */
const PROGRESS_REPORT_BYTES = 64 * 1024 * 1024;
/**
 * CPU seconds per GB of each stream measured on this project's machines (SHA-256 with SHA-NI via
 * OpenSSL, zlib's CRC-32, native BLAKE3), used to balance streams across threads.
 */
const STREAM_COST: Record<HashStream, number> = { sha256: 0.7, autov3: 0.7, crc32: 0.25, blake3: 0.2 };

export interface HashPassOptions {
  streams: readonly HashStream[];
  autoV3Start: number;
  /** Worker threads; 0 hashes on the calling thread. Workers need `path`. */
  threads: number;
  /** The file behind `source`, which worker threads open themselves. */
  path?: string;
  /** Called as bytes are hashed by every stream. */
  onBytes?: (bytes: number) => void;
}

/** Reads `source` front to back once per lane, feeding every stream; returns their digests. */
export async function runHashPass(source: ByteSource, options: HashPassOptions): Promise<RawDigests> {
  if (options.streams.length === 0) return {};
  if (options.threads === 0 || options.path === undefined) return hashOnThisThread(source, options);
  const lanes = assignLanes(options.streams, options.threads);
  return hashOnWorkers(options.path, source.size, lanes, options);
}

/** Splits streams into at most `threads` lanes of similar cost (costliest first, into the lightest lane). */
export function assignLanes(streams: readonly HashStream[], threads: number): HashStream[][] {
  const count = Math.max(1, Math.min(threads, streams.length));
  const lanes = Array.from({ length: count }, () => ({ streams: [] as HashStream[], cost: 0 }));
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
  const readBytes = Math.min(READ_BYTES, source.size);
  // Two buffers: the next read runs in the thread pool while this thread hashes the current one.
  const buffers = [new Uint8Array(readBytes), new Uint8Array(readBytes)];
  const readAt = (offset: number, index: number) =>
    readChunk(source, buffers[index % 2]!.subarray(0, Math.min(readBytes, source.size - offset)), offset);
  let pending = source.size > 0 ? readAt(0, 0) : undefined;
  for (let offset = 0, index = 0; pending; offset += readBytes, index++) {
    const chunk = await pending;
    const next = offset + readBytes;
    pending = next < source.size ? readAt(next, index + 1) : undefined;
    lane.update(chunk, offset);
    options.onBytes?.(chunk.byteLength);
  }
  return lane.digest();
}

type ChunkReader = { readInto(target: Uint8Array, offset: number): Promise<Uint8Array> };

/** Fills `target` from `offset`, without a copy when the source can read into a buffer. */
async function readChunk(source: ByteSource, target: Uint8Array, offset: number): Promise<Uint8Array> {
  const reader = source as Partial<ChunkReader>;
  if (typeof reader.readInto === "function") return reader.readInto(target, offset);
  target.set(await source.read(offset, target.byteLength));
  return target;
}

type WorkerMessage = { type: "progress"; bytes: number } | { type: "digests"; digests: RawDigests };

/** One worker per lane, each reading the file itself; progress is that of the slowest lane. */
async function hashOnWorkers(
  path: string,
  size: number,
  lanes: HashStream[][],
  options: HashPassOptions,
): Promise<RawDigests> {
  const source = hashWorkerSource();
  const blake3 = blake3Locations();
  const done = new Array<number>(lanes.length).fill(0);
  let reported = 0;
  const workers: Worker[] = [];
  try {
    const digests = await Promise.all(
      lanes.map(
        (streams, lane) =>
          new Promise<RawDigests>((resolve, reject) => {
            const workerData = {
              path,
              size,
              streams,
              autoV3Start: options.autoV3Start,
              readBytes: READ_BYTES,
              reportBytes: PROGRESS_REPORT_BYTES,
              blake3,
            };
            const worker = new Worker(source, { eval: true, workerData });
            workers.push(worker);
            worker.on("message", (message: WorkerMessage) => {
              if (message.type === "digests") return resolve(message.digests);
              done[lane]! += message.bytes;
              const slowest = Math.min(...done);
              if (slowest > reported) options.onBytes?.(slowest - reported);
              reported = Math.max(reported, slowest);
            });
            worker.on("error", (error) => reject(workerError(path, error)));
            worker.on("exit", (code) =>
              reject(workerError(path, new Error(`worker exited with code ${code}`))),
            );
          }),
      ),
    );
    return Object.assign({}, ...digests);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

function workerError(path: string, cause: Error): GyozaError {
  const shrank = cause.message.includes("file shrank");
  return new GyozaError("io", shrank ? "file shrank while being read" : `hashing failed: ${cause.message}`, {
    file: path,
    cause,
  });
}
