import { readFile } from "node:fs/promises";
import { GyozaError } from "../errors.js";
import { WASM_KERNEL_FILE } from "./kernel-files.js";
import {
  createMergeKernel,
  type FloatDType,
  floatDTypeBytes,
  type KernelBackend,
  type MergeKernel,
} from "./merge-kernel.js";
import { WasmHelper } from "./wasm-helper.js";

/**
 * The parts of the WebAssembly JS API used here, typed locally: the project's TypeScript libs
 * (ES2022 + @types/node 20) do not declare the `WebAssembly` global.
 */
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number; shared: true }) => WasmMemory;
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/**
 * Exports of build/kernels.wasm (wasm/kernels.ts): each works on pointers into the shared memory and
 * an element count (a multiple of 8, except for lerpF32 and countNonFinite, which take any count).
 */
export interface WasmExports {
  heapBase(): number;
  toFloat32(src: number, dtype: number, out: number, count: number): void;
  fromFloat32(src: number, dtype: number, out: number, count: number): void;
  weightedSumF32(a: number, b: number, out: number, w0: number, w1: number, count: number): void;
  lerpF32(a: number, b: number, out: number, weight: number, count: number): void;
  addDifferenceF32(a: number, b: number, c: number, out: number, alpha: number, count: number): void;
  weightedSum(
    a: number,
    aType: number,
    b: number,
    bType: number,
    out: number,
    outType: number,
    w0: number,
    w1: number,
    count: number,
  ): void;
  nestedWeightedSum(
    a: number,
    aType: number,
    b: number,
    bType: number,
    c: number,
    cType: number,
    out: number,
    outType: number,
    w0: number,
    w1: number,
    u: number,
    v: number,
    count: number,
  ): void;
  countNonFinite(src: number, dtype: number, count: number): number;
  addLowRankF32(
    base: number,
    up: number,
    down: number,
    rank: number,
    cols: number,
    stride: number,
    begin: number,
    multiplier: number,
    out: number,
    count: number,
  ): void;
  copyBytes(dst: number, src: number, count: number): void;
}

const DTYPE_CODES: Record<FloatDType, number> = { F16: 0, BF16: 1, F32: 2 };
const WASM_PAGE_BYTES = 65536;
/** 1 GiB, as declared by the module (scripts/build-wasm.mjs): past it, buffers are copied in and out. */
const WASM_MAXIMUM_PAGES = 16384;
/** Elements of one staging region; the kernel's loops work in groups of this many lanes. */
const STAGE_ELEMENTS = 16384;
const LANES = 8;
/** Arena buffers start on this boundary (the buffer pool's smallest class). */
const ARENA_ALIGN = 64 << 10;

/** Whether this JavaScript engine runs WebAssembly SIMD (a module using one v128 op validates). */
export function hasWasmSimd(): boolean {
  // (module (func (result v128) v128.const i32x4 0 0 0 0))
  const probe = new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
  ]);
  return wasmApi?.validate(probe) ?? false;
}

/**
 * Loads the WebAssembly SIMD kernel from build/kernels.wasm. Its memory is shared: buffers allocated
 * in it (`allocate`, used by the merge engine's buffer pool) are read into by the file reads and
 * worked on in place, by this thread and a helper thread; other buffers are copied through staging
 * regions.
 */
export async function createWasmKernel(file: string = WASM_KERNEL_FILE): Promise<MergeKernel> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    throw new GyozaError("io", "the WebAssembly kernel is not built", {
      file,
      fix: "run `npm run build:wasm`",
      cause,
    });
  }
  if (!wasmApi) throw new GyozaError("usage", "this JavaScript engine has no WebAssembly");
  const module = new wasmApi.Module(bytes);
  const memory = new wasmApi.Memory({ initial: 1, maximum: WASM_MAXIMUM_PAGES, shared: true });
  const wasm = new wasmApi.Instance(module, { env: { memory } }).exports as unknown as WasmExports;
  const space = new KernelMemory(memory, wasm.heapBase());
  return createMergeKernel(wasmBackend(wasm, space, new WasmHelper(module, memory)));
}

/**
 * The kernel's linear memory: four staging regions (A, B, C, OUT) after the module's own data, then
 * an arena of buffers handed out for good (the buffer pool reuses them), growing the memory as needed.
 */
export class KernelMemory {
  readonly regions: readonly [number, number, number, number];
  /** Every SharedArrayBuffer object the memory has had (a new one after each grow, same memory). */
  private readonly buffers = new WeakSet<SharedArrayBuffer>();
  private readonly staging: Uint8Array;
  private next: number;
  /** Buffers given back, by length, handed out again before the arena grows. */
  private readonly freed = new Map<number, Buffer[]>();

  constructor(
    private readonly memory: WasmMemory,
    heapBase: number,
  ) {
    const regionBytes = STAGE_ELEMENTS * 4;
    this.regions = [0, 1, 2, 3].map((index) => heapBase + index * regionBytes) as unknown as [
      number,
      number,
      number,
      number,
    ];
    this.next = Math.ceil((heapBase + 4 * regionBytes) / ARENA_ALIGN) * ARENA_ALIGN;
    this.ensure(this.next);
    // the regions lie below the first arena buffer, so a view taken now covers them for good
    this.staging = new Uint8Array(this.memory.buffer);
  }

  /** `bytes` bytes in the memory (64 KiB aligned), or undefined when the memory cannot grow that far. */
  allocate(bytes: number): Buffer | undefined {
    const reused = this.freed.get(bytes)?.pop();
    if (reused) return reused;
    const start = this.next;
    const end = start + Math.ceil(bytes / ARENA_ALIGN) * ARENA_ALIGN;
    if (!this.ensure(end)) return undefined;
    this.next = end;
    return Buffer.from(this.memory.buffer, start, bytes);
  }

  /** Takes back a buffer `allocate` handed out. */
  free(buffer: Buffer): void {
    if (this.pointer(buffer) === undefined) return;
    const list = this.freed.get(buffer.byteLength) ?? [];
    list.push(buffer);
    this.freed.set(buffer.byteLength, list);
  }

  /** The address of a view in the memory, or undefined for a view of other memory. */
  pointer(view: Uint8Array): number | undefined {
    return view.buffer instanceof SharedArrayBuffer && this.buffers.has(view.buffer)
      ? view.byteOffset
      : undefined;
  }

  /** `length` bytes of the memory at `pointer`. */
  view(pointer: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, pointer, length);
  }

  /** Copies `bytes` into staging region `index`. */
  stage(index: number, bytes: Uint8Array): void {
    this.staging.set(bytes, this.regions[index]!);
  }

  /** The first `length` bytes of staging region `index`. */
  staged(index: number, length: number): Uint8Array {
    const at = this.regions[index]!;
    return this.staging.subarray(at, at + length);
  }

  private ensure(end: number): boolean {
    const missing = end - this.memory.buffer.byteLength;
    if (missing > 0) {
      try {
        this.memory.grow(Math.ceil(missing / WASM_PAGE_BYTES));
      } catch {
        return false; // at the maximum, or no address space left
      }
    }
    this.buffers.add(this.memory.buffer);
    return true;
  }
}

/** One array argument of a kernel call: its bytes and the size of its elements. */
interface Operand {
  bytes: Uint8Array;
  size: number;
}

function wasmBackend(wasm: WasmExports, space: KernelMemory, helper: WasmHelper): KernelBackend {
  /**
   * Calls `call` with pointers to the inputs and the output (last): in place over the whole groups
   * of `lanes` when every operand lies in the kernel's memory, and through the staging regions (input
   * i in region i, output in region 3) for everything else. Returns the sum of what `call` returned.
   */
  const run = (
    inputs: readonly Operand[],
    output: Operand | undefined,
    count: number,
    lanes: number,
    call: (pointers: number[], count: number, inPlace: boolean) => unknown,
  ): number => {
    let result = 0;
    let done = 0;
    const operands = output ? [...inputs, output] : inputs;
    const pointers = operands.map((operand) => space.pointer(operand.bytes));
    if (pointers.every((pointer) => pointer !== undefined)) {
      done = count - (count % lanes);
      if (done > 0) result += numberOr0(call(pointers, done, true));
    }
    const staged = [...inputs.map((_, index) => space.regions[index]!), space.regions[3]];
    for (let start = done; start < count; start += STAGE_ELEMENTS) {
      const n = Math.min(STAGE_ELEMENTS, count - start);
      for (const [index, { bytes, size }] of inputs.entries())
        space.stage(index, bytes.subarray(start * size, (start + n) * size));
      result += numberOr0(call(staged, n, false));
      if (output) output.bytes.set(space.staged(3, n * output.size), start * output.size);
    }
    return result;
  };
  const f32 = (values: Float32Array): Operand => ({ bytes: bytesOf(values), size: 4 });
  const encoded = (bytes: Uint8Array, dtype: FloatDType): Operand => ({
    bytes,
    size: floatDTypeBytes(dtype),
  });

  return {
    name: "wasm",
    allocate: (bytes) => space.allocate(bytes),
    free: (buffer) => space.free(buffer),
    copy(target, source) {
      const [to, from] = [space.pointer(target), space.pointer(source)];
      if (to === undefined || from === undefined) target.set(source);
      else wasm.copyBytes(to, from, source.byteLength);
    },
    toFloat32(src, dtype, out) {
      run([encoded(src, dtype)], f32(out), out.length, LANES, ([s, o], n) =>
        wasm.toFloat32(s!, DTYPE_CODES[dtype], o!, n),
      );
    },
    fromFloat32(src, dtype, out) {
      run([f32(src)], encoded(out, dtype), src.length, LANES, ([s, o], n) =>
        wasm.fromFloat32(s!, DTYPE_CODES[dtype], o!, n),
      );
    },
    weightedSumF32(a, b, w0, w1, out) {
      run([f32(a), f32(b)], f32(out), out.length, LANES, ([x, y, o], n) =>
        wasm.weightedSumF32(x!, y!, o!, w0, w1, n),
      );
    },
    lerpF32(a, b, weight, out) {
      run([f32(a), f32(b)], f32(out), out.length, 1, ([x, y, o], n) => wasm.lerpF32(x!, y!, o!, weight, n));
    },
    addDifferenceF32(a, b, c, alpha, out) {
      run([f32(a), f32(b), f32(c)], f32(out), out.length, LANES, ([x, y, z, o], n) =>
        wasm.addDifferenceF32(x!, y!, z!, o!, alpha, n),
      );
    },
    weightedSum(a, aType, b, bType, w0, w1, out, outType) {
      const [aCode, bCode, outCode] = [DTYPE_CODES[aType], DTYPE_CODES[bType], DTYPE_CODES[outType]];
      const [x, y, o] = [encoded(a, aType), encoded(b, bType), encoded(out, outType)];
      run([x, y], o, a.byteLength / x.size, LANES, ([pa, pb, po], n, inPlace) => {
        const front = (count: number) =>
          wasm.weightedSum(pa!, aCode, pb!, bCode, po!, outCode, w0, w1, count);
        // only in-place calls are split (the helper shares the memory, not the staging regions)
        if (inPlace && helper.canSplit(n)) {
          const call = { a: pa!, aSize: x.size, aType: aCode, b: pb!, bSize: y.size, bType: bCode };
          helper.split({ ...call, out: po!, outSize: o.size, outType: outCode, w0, w1 }, n, front);
        } else front(n);
      });
    },
    nestedWeightedSum(a, b, c, { w0, w1, u, v }, out) {
      const [aCode, bCode, cCode, outCode] = [a, b, c, out].map(({ dtype }) => DTYPE_CODES[dtype]);
      const [x, y, z, o] = [a, b, c, out].map(({ bytes, dtype }) => encoded(bytes, dtype));
      run([x!, y!, z!], o, a.bytes.byteLength / x!.size, LANES, ([pa, pb, pc, po], n, inPlace) => {
        const front = (count: number) =>
          wasm.nestedWeightedSum(pa!, aCode!, pb!, bCode!, pc!, cCode!, po!, outCode!, w0, w1, u, v, count);
        if (inPlace && helper.canSplit(n)) {
          const nested = { c: pc!, cSize: z!.size, cType: cCode!, u, v };
          const call = { a: pa!, aSize: x!.size, aType: aCode!, b: pb!, bSize: y!.size, bType: bCode! };
          helper.split({ ...call, out: po!, outSize: o!.size, outType: outCode!, w0, w1, nested }, n, front);
        } else front(n);
      });
    },
    countNonFinite(bytes, dtype) {
      const operand = encoded(bytes, dtype);
      return run([operand], undefined, bytes.byteLength / operand.size, 1, ([s], n) =>
        wasm.countNonFinite(s!, DTYPE_CODES[dtype], n),
      );
    },
    addLowRankF32(base, { up, down, rank, cols, stride }, begin, multiplier, out) {
      // Every operand in the kernel's memory: the engine allocates them there (the buffer pool);
      // others are copied into buffers of the memory for the call, and the result copied out.
      const borrowed: Buffer[] = [];
      const inMemory = (values: Float32Array, copyIn: boolean): number => {
        const pointer = space.pointer(bytesOf(values));
        if (pointer !== undefined) return pointer;
        const buffer = space.allocate(values.byteLength);
        if (!buffer) throw new GyozaError("usage", "the WebAssembly kernel's memory is full");
        borrowed.push(buffer);
        if (copyIn) buffer.set(bytesOf(values));
        return space.pointer(buffer)!;
      };
      try {
        const [b, u, d] = [inMemory(base, true), inMemory(up, true), inMemory(down, true)];
        const o = out === base ? b : inMemory(out, false);
        wasm.addLowRankF32(b, u, d, rank, cols, stride, begin, multiplier, o, out.length);
        if (space.pointer(bytesOf(out)) === undefined)
          bytesOf(out).set(new Uint8Array(space.view(o, out.byteLength)));
      } finally {
        for (const buffer of borrowed) space.free(buffer);
      }
    },
  };
}

/** What a kernel export returned, as a count (0 for the ones that return nothing). */
function numberOr0(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

/** The raw bytes of a float array: copies through them keep NaN payloads bit for bit. */
function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
