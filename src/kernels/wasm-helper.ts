import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { GyozaError } from "../errors.js";

/**
 * A second thread for the WebAssembly kernel's fused (and nested) weighted sums. Without a compiler
 * there is no native kernel, and the wasm one (≈2 GB/s) is the main thread's largest cost in a merge,
 * while the other core is partly idle. A large call on buffers in the kernel's shared memory is split: this
 * helper computes the back part in its own instance of the same module over the same memory (so the
 * bits are the same, and nothing is copied) while the caller computes the front part; the caller then
 * blocks in Atomics.wait until the helper is done, so the kernel call stays synchronous.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { errors } = workerData;
let wasm, setupError;
try {
  wasm = new WebAssembly.Instance(workerData.module, { env: { memory: workerData.memory } }).exports;
} catch (error) {
  setupError = error;
}
parentPort.on("message", ({ control, a, aType, b, bType, out, outType, w0, w1, nested, count }) => {
  let status = 1;
  try {
    if (setupError) throw setupError;
    if (nested) {
      const { c, cType, u, v } = nested;
      wasm.nestedWeightedSum(a, aType, b, bType, c, cType, out, outType, w0, w1, u, v, count);
    } else wasm.weightedSum(a, aType, b, bType, out, outType, w0, w1, count);
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

/**
 * A fused weighted sum on pointers into the kernel's memory, or a nested one with `nested`'s third
 * operand and outer weights; sizes are bytes per element.
 */
export interface SplitCall {
  a: number;
  aSize: number;
  aType: number;
  b: number;
  bSize: number;
  bType: number;
  out: number;
  outSize: number;
  outType: number;
  w0: number;
  w1: number;
  nested?: { c: number; cSize: number; cType: number; u: number; v: number };
}

export class WasmHelper {
  private worker: Worker | null = null;
  private errors: MessagePort | null = null;
  private readonly control = new Int32Array(new SharedArrayBuffer(4));

  /** `module` is instantiated on the helper thread over `memory`, the caller's own. */
  constructor(
    private readonly module: object,
    private readonly memory: object,
  ) {}

  /** Whether a weighted sum of `count` elements is worth splitting. */
  canSplit(count: number): boolean {
    return count >= SPLIT_MIN_ELEMENTS;
  }

  /**
   * Runs `front(split)` (elements [0, split)) here and the weighted sum of [split, count) on
   * the helper, and returns when both are done. `count` is a multiple of 8, like every in-place call.
   */
  split(call: SplitCall, count: number, front: (count: number) => void): void {
    const split = Math.floor(count / 2 / 16) * 16;
    const { nested } = call;
    Atomics.store(this.control, 0, 0);
    this.start().postMessage({
      ...call,
      control: this.control,
      a: call.a + split * call.aSize,
      b: call.b + split * call.bSize,
      out: call.out + split * call.outSize,
      ...(nested ? { nested: { ...nested, c: nested.c + split * nested.cSize } } : {}),
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
        workerData: { module: this.module, memory: this.memory, errors: port2 },
        transferList: [port2],
      });
      this.worker.unref(); // the caller waits for it synchronously; it never keeps the process alive
    }
    return this.worker;
  }
}
