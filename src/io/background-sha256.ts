import { Worker } from "node:worker_threads";

/**
 * sha256 of a byte stream computed on a worker thread, so hashing a multi-gigabyte output costs the
 * main thread (where merge arithmetic runs) only a copy per chunk (a memcpy is several times
 * faster than sha256). Chunks are copied rather than transferred so callers keep their buffers.
 */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const hash = require("node:crypto").createHash("sha256");
parentPort.on("message", (message) => {
  if (message === "digest") parentPort.postMessage(hash.digest("hex"));
  else hash.update(message);
});
`;

export class BackgroundSha256 {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true });
  private failure: Error | undefined;

  constructor() {
    this.worker.on("error", (error) => {
      this.failure = error;
    });
    this.worker.unref();
  }

  update(bytes: Uint8Array): void {
    // structured cloning a view copies its whole backing buffer: post exactly the viewed bytes
    const exact = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    this.worker.postMessage(exact ? bytes : Uint8Array.prototype.slice.call(bytes));
  }

  /** The hex digest of everything passed to `update`; ends the worker. */
  async digest(): Promise<string> {
    if (this.failure) throw this.failure;
    const result = new Promise<string>((resolve, reject) => {
      this.worker.once("message", resolve);
      this.worker.once("error", reject);
    });
    this.worker.postMessage("digest");
    try {
      return await result;
    } finally {
      await this.worker.terminate();
    }
  }

  async dispose(): Promise<void> {
    await this.worker.terminate();
  }
}
