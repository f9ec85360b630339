import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
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
const { errors } = workerData;
let wasm, memory, chunk, regionA, regionB, regionOut, setupError;
try {
  wasm = new WebAssembly.Instance(workerData.module, {}).exports;
  const missing = wasm.memoryBytesNeeded() - wasm.memory.buffer.byteLength;
  if (missing > 0) wasm.memory.grow(Math.ceil(missing / 65536));
  memory = new Uint8Array(wasm.memory.buffer);
  chunk = wasm.chunkElements();
  const base = wasm.regionBase();
  [regionA, regionB, regionOut] = [base, base + chunk * 4, base + 3 * chunk * 4];
} catch (error) {
  setupError = error;
}
parentPort.on("message", ({ control, a, aSize, aType, b, bSize, bType, out, outSize, outType, w0, w1, count }) => {
  let status = 1;
  try {
    if (setupError) throw setupError;
    for (let start = 0; start < count; start += chunk) {
      const n = Math.min(chunk, count - start);
      memory.set(a.subarray(start * aSize, (start + n) * aSize), regionA);
      memory.set(b.subarray(start * bSize, (start + n) * bSize), regionB);
      wasm.weightedSum(aType, bType, outType, w0, w1, n);
      out.set(memory.subarray(regionOut, regionOut + n * outSize), start * outSize);
    }
  } catch (error) {
    status = 2;
    errors.postMessage(String(error && error.stack ? error.stack : error)); // read by the waiting caller
  }
  Atomics.store(control, 0, status);
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
  private errors: MessagePort | null = null;
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
    if (Atomics.load(this.control, 0) === 1) return;
    // the helper's own error, posted before it woke us (the event loop is not running here)
    const cause = this.errors && receiveMessageOnPort(this.errors)?.message;
    this.worker?.terminate();
    this.worker = null;
    const reason =
      waited === "timed-out"
        ? `did not answer in ${WAIT_TIMEOUT_MS / 1000} s`
        : `failed: ${String(cause ?? "no reason given").split("\n")[0]}`;
    throw new GyozaError("io", `the WebAssembly helper thread ${reason}`, {
      fix: "use the native kernel (--kernel native) if it is built",
      cause: cause ? new Error(String(cause)) : undefined,
    });
  }

  private start(): Worker {
    if (!this.worker) {
      const { port1, port2 } = new MessageChannel();
      this.errors = port1;
      this.worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: this.module, errors: port2 },
        transferList: [port2],
      });
      this.worker.unref(); // the caller waits for it synchronously; it never keeps the process alive
    }
    return this.worker;
  }
}
