import { Worker } from "node:worker_threads";
import { GyozaError } from "../errors.js";

/**
 * sha256 of a stream of chunks, computed on a worker thread straight from the chunks' memory: no
 * second read of the written file and no copy of the data when the chunks live in SharedArrayBuffers
 * (the merge engine's buffer pool hands out only such buffers). Other chunks are copied into shared
 * memory first. `update` resolves once the worker has hashed the chunks, after which the caller may
 * reuse their memory; the main thread, where merge arithmetic runs, never hashes.
 */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const hash = require("node:crypto").createHash("sha256");
parentPort.on("message", ({ id, parts, final }) => {
  for (const { buffer, offset, length } of parts) hash.update(new Uint8Array(buffer, offset, length));
  parentPort.postMessage({ id, digest: final ? hash.digest("hex") : null });
});
`;

interface Part {
  buffer: SharedArrayBuffer;
  offset: number;
  length: number;
}

interface Pending {
  resolve: (digest: string | null) => void;
  reject: (error: Error) => void;
}

export class ChunkSha256 {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.on("message", ({ id, digest }: { id: number; digest: string | null }) => {
      const waiting = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) this.worker.unref();
      waiting?.resolve(digest);
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      for (const waiting of this.pending.values()) waiting.reject(this.failure);
      this.pending.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", () => fail(new GyozaError("io", "the hashing thread stopped")));
    // idle, the worker does not keep the process alive; a request waiting on it does (else Node
    // would exit mid-merge with nothing left but a promise)
    this.worker.unref();
  }

  /** Hashes `chunks` after everything given before; resolves when their memory may be reused. */
  async update(chunks: readonly Uint8Array[]): Promise<void> {
    await this.send(chunks.map(sharedPart), false);
  }

  /** The hex digest of everything given to `update`; ends the worker. */
  async digest(): Promise<string> {
    try {
      return (await this.send([], true))!;
    } finally {
      await this.worker.terminate();
    }
  }

  async dispose(): Promise<void> {
    await this.worker.terminate();
  }

  private send(parts: Part[], final: boolean): Promise<string | null> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const done = new Promise<string | null>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.ref();
    this.worker.postMessage({ id, parts, final });
    return done;
  }
}

/** The chunk as a view of shared memory: itself when it already is one, else a copy. */
function sharedPart(chunk: Uint8Array): Part {
  if (chunk.buffer instanceof SharedArrayBuffer)
    return { buffer: chunk.buffer, offset: chunk.byteOffset, length: chunk.byteLength };
  const buffer = new SharedArrayBuffer(chunk.byteLength);
  new Uint8Array(buffer).set(chunk);
  return { buffer, offset: 0, length: chunk.byteLength };
}
