import { Worker } from "node:worker_threads";
import { GyozaError } from "../errors.js";

/**
 * A second thread for the WebAssembly kernel's fused weighted sum. Without a compiler there is no
 * native kernel, and the wasm one (≈2 GB/s) is the main thread's largest cost in a merge, while the
 * other core is partly idle. A large call is split: this helper computes the back part in its own
 * instance of the same module (so the bits are the same) while the caller computes the front part;
 * the caller then blocks in Atomics.wait until the helper is done, so the kernel call stays
 * synchronous. Only buffers in shared memory (the merge engine's pool) can be split.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const wasm = new WebAssembly.Instance(workerData.module, {}).exports;
const missing = wasm.memoryBytesNeeded() - wasm.memory.buffer.byteLength;
if (missing > 0) wasm.memory.grow(Math.ceil(missing / 65536));
const memory = new Uint8Array(wasm.memory.buffer);
const chunk = wasm.chunkElements();
const base = wasm.regionBase();
const regionA = base, regionB = base + chunk * 4, regionOut = base + 3 * chunk * 4;
parentPort.on("message", ({ control, a, aSize, aType, b, bSize, bType, out, outSize, outType, w0, w1, count }) => {
  let status = 0;
  try {
    for (let start = 0; start < count; start += chunk) {
      const n = Math.min(chunk, count - start);
      memory.set(a.subarray(start * aSize, (start + n) * aSize), regionA);
      memory.set(b.subarray(start * bSize, (start + n) * bSize), regionB);
      wasm.weightedSum(aType, bType, outType, w0, w1, n);
      out.set(memory.subarray(regionOut, regionOut + n * outSize), start * outSize);
    }
  } catch {
    status = 2;
  }
  Atomics.store(control, 0, status === 0 ? 1 : status);
  Atomics.notify(control, 0);
});
`;

/** Calls smaller than this are not split: a round trip to the helper costs more than it saves. */
export const SPLIT_MIN_ELEMENTS = 1 << 17;
/** Far longer than any split half takes; reaching it means the helper thread is gone. */
const WAIT_TIMEOUT_MS = 60_000;

export interface SplitCall {
  a: Uint8Array;
  aSize: number;
  aType: number;
  b: Uint8Array;
  bSize: number;
  bType: number;
  out: Uint8Array;
  outSize: number;
  outType: number;
  w0: number;
  w1: number;
}

export class WasmHelper {
  private worker: Worker | null = null;
  private readonly control = new Int32Array(new SharedArrayBuffer(4));

  constructor(private readonly module: object) {}

  /** Whether `weightedSum` over these buffers can be split (all in shared memory, large enough). */
  canSplit(count: number, buffers: readonly Uint8Array[]): boolean {
    return count >= SPLIT_MIN_ELEMENTS && buffers.every((bytes) => bytes.buffer instanceof SharedArrayBuffer);
  }

  /**
   * Runs `front(0, split)` here and the fused weighted sum of [split, count) on the helper, and
   * returns when both are done.
   */
  split(call: SplitCall, count: number, front: (count: number) => void): void {
    const split = Math.floor(count / 2 / 16) * 16;
    const part = (bytes: Uint8Array, size: number) => bytes.subarray(split * size, count * size);
    Atomics.store(this.control, 0, 0);
    this.start().postMessage({
      ...call,
      control: this.control,
      a: part(call.a, call.aSize),
      b: part(call.b, call.bSize),
      out: part(call.out, call.outSize),
      count: count - split,
    });
    front(split);
    const waited = Atomics.wait(this.control, 0, 0, WAIT_TIMEOUT_MS);
    const status = Atomics.load(this.control, 0);
    if (waited === "timed-out" || status !== 1) {
      this.worker?.terminate();
      this.worker = null;
      throw new GyozaError("io", "the WebAssembly helper thread failed");
    }
  }

  private start(): Worker {
    if (!this.worker) {
      this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: this.module } });
      this.worker.unref(); // the caller waits for it synchronously; it never keeps the process alive
    }
    return this.worker;
  }
}
