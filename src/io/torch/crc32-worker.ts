import { Worker } from "node:worker_threads";
import * as zlib from "node:zlib";
import { GyozaError } from "../../errors.js";

/**
 * CRC-32s of pieces of shared memory, computed on a worker thread: a `.ckpt` written by a merge is
 * a zip whose every entry carries the CRC-32 of its bytes, 2 GB of them for an SD 1.5 model, which on
 * the main thread (where the merge arithmetic runs) cost ~0.6 s. Each piece's CRC is computed on its
 * own and joined to the ones before it with `crc32Combine`, so pieces may finish in any order.
 */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { crc32 } = require("node:zlib");
parentPort.on("message", ({ id, buffer, offset, length }) => {
  parentPort.postMessage({ id, crc: crc32(new Uint8Array(buffer, offset, length)) });
});
`;

type NativeCrc32 = (data: Uint8Array, value?: number) => number;

interface Pending {
  resolve: (crc: number) => void;
  reject: (error: Error) => void;
}

export class Crc32Worker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;

  /** A worker, or undefined where node:zlib has no crc32 (Node < 20.15): the caller CRCs in place. */
  static create(): Crc32Worker | undefined {
    return (zlib as { crc32?: NativeCrc32 }).crc32 ? new Crc32Worker() : undefined;
  }

  private constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.on("message", ({ id, crc }: { id: number; crc: number }) => {
      const waiting = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) this.worker.unref();
      waiting?.resolve(crc);
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      for (const waiting of this.pending.values()) waiting.reject(this.failure);
      this.pending.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", () => fail(new GyozaError("io", "the CRC-32 thread stopped")));
    this.worker.unref();
  }

  /**
   * The CRC-32 of `bytes` (from zero), which must be a view of shared memory that stays unchanged
   * until the promise settles.
   */
  crc32(bytes: Uint8Array): Promise<number> {
    if (!(bytes.buffer instanceof SharedArrayBuffer))
      return Promise.reject(new TypeError("Crc32Worker reads shared memory only"));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const done = new Promise<number>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.ref();
    this.worker.postMessage({ id, buffer: bytes.buffer, offset: bytes.byteOffset, length: bytes.byteLength });
    return done;
  }

  async dispose(): Promise<void> {
    await this.worker.terminate();
  }
}

const POLY = 0xedb88320;

/** a·b modulo the CRC-32 polynomial (bit-reflected), as zlib's multmodp. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^n) modulo the polynomial, n = 0..31 (zlib's x2n_table). */
const X2N: number[] = (() => {
  const table = [0x40000000];
  for (let n = 1; n < 32; n++) table.push(multModP(table[n - 1]!, table[n - 1]!));
  return table;
})();

/** x^(n·2^k) modulo the polynomial (zlib's x2nmodp). */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000;
  while (n > 0) {
    if (n % 2) p = multModP(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** The CRC-32 of A followed by B from crc(A), crc(B) and B's length (zlib's crc32_combine). */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(x2nModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}
