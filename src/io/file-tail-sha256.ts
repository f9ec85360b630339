import { Worker } from "node:worker_threads";
import { GyozaError } from "../errors.js";

/**
 * sha256 of a file that is being written, computed on a worker thread that reads the bytes back
 * behind the writer (from the page cache). The main thread, where merge arithmetic runs, only says
 * how far the file is written: no copy of the data crosses threads, and memory stays flat however
 * far the hasher falls behind.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync } = require("node:fs");
const hash = require("node:crypto").createHash("sha256");
const fd = openSync(workerData.path, "r");
const buffer = Buffer.allocUnsafe(8 << 20);
let position = workerData.start;
parentPort.on("message", ({ upTo, final }) => {
  while (position < upTo) {
    const read = readSync(fd, buffer, 0, Math.min(buffer.length, upTo - position), position);
    if (read === 0) throw new Error("file ended at " + position + " before " + upTo);
    hash.update(buffer.subarray(0, read));
    position += read;
  }
  if (final) {
    closeSync(fd);
    parentPort.postMessage(hash.digest("hex"));
  }
});
`;

export class FileTailSha256 {
  private readonly worker: Worker;
  private failure: Error | undefined;

  /** Hashes `path` from byte `start` on, as far as `advance` says it is written. */
  constructor(path: string, start: number) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, start } });
    this.worker.on("error", (error) => {
      this.failure = error;
    });
    this.worker.unref();
  }

  /** The file now holds valid bytes up to `position`. */
  advance(position: number): void {
    this.worker.postMessage({ upTo: position, final: false });
  }

  /** The hex digest of [start, end); ends the worker. */
  async digest(end: number): Promise<string> {
    const result = new Promise<string>((resolve, reject) => {
      this.worker.once("message", resolve);
      this.worker.once("error", reject);
      this.worker.once("exit", () =>
        reject(this.failure ?? new GyozaError("io", "the hashing thread stopped")),
      );
    });
    this.worker.postMessage({ upTo: end, final: true });
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
