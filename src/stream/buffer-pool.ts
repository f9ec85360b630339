import { pageAlignedMemory } from "../io/direct-appender.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { StreamRing } from "./stream-ring.js";

/**
 * Reuses the buffers a streaming pass churns through (reads, kernel outputs). Fresh large
 * allocations are fresh pages: every one costs page faults and, freed, garbage-collector work,
 * which at disk speed adds up to seconds per model. Buffers come in power-of-two capacity classes
 * (SD tensors have hundreds of distinct sizes) and are handed out as views of exactly the size
 * asked for. `release` ignores buffers it did not hand out, so producers may mix pooled and
 * one-off buffers freely. The memory is shared (SharedArrayBuffer), so the output hasher's worker
 * thread reads written chunks in place instead of a copy (src/io/chunk-sha256.ts). Given the merge
 * kernel's `allocate`, buffers come from the kernel's own memory while it has room (the wasm kernel
 * then works on reads in place, with no copies in and out of its memory).
 */
const MIN_CLASS_BYTES = 64 << 10;

/**
 * The stream ring: twice the writer's read-ahead (src/stream/write-output.ts), so the range taken past
 * the budget fits too; a read that finds no free stretch comes from the size classes instead.
 */
export const STREAM_RING_BYTES = 32 << 20;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private readonly backingOf = new WeakMap<Uint8Array, Buffer>();
  /** Buffers from `allocate`: never freed by dropping them, so always kept for reuse. */
  private readonly kernelOwned = new WeakSet<Buffer>();
  private retainedBytes = 0;

  /**
   * Buffers kept for reuse beyond `maxRetainedBytes` are dropped (the pool never grows past it).
   * `kernel.allocate` (a merge kernel's) is asked for new buffers first; `dispose` gives them back.
   */
  /** The ring stream buffers come from, made at the first `acquireStream`. */
  private ring: StreamRing | undefined;
  private ringMemory: Buffer | undefined;

  constructor(
    private readonly maxRetainedBytes = 256 << 20,
    private readonly kernel: Pick<MergeKernel, "allocate" | "free"> = {},
    /** Size of the ring for stream buffers. */
    private readonly streamBytes = STREAM_RING_BYTES,
  ) {}

  /**
   * A buffer given back in about the order taken (a streaming pass's reads): from one ring of memory
   * (src/stream/stream-ring.ts), or, when the ring has no stretch that long, as `acquire` gives.
   */
  acquireStream(byteLength: number): Uint8Array {
    return this.streamRing().take(byteLength) ?? this.acquire(byteLength);
  }

  /**
   * A stream buffer whose address is a multiple of `align` (at most 64 KiB), as O_DIRECT reads need,
   * or undefined when the ring has no free stretch that long (the caller then reads another way).
   */
  acquireStreamAligned(byteLength: number, align: number): Uint8Array | undefined {
    return this.streamRing().take(byteLength, align);
  }

  /**
   * Bytes [begin, end) of a stream buffer as a buffer of its own, released on its own: the memory is
   * reused once the buffer and every shared part are released (one read, several callers' bytes).
   */
  share(buffer: Uint8Array, begin: number, end: number): Uint8Array {
    const shared = this.ring?.share(buffer, begin, end);
    if (!shared) throw new Error("BufferPool.share takes a buffer from acquireStreamAligned");
    return shared;
  }

  /** Bytes of the stream ring held by buffers not yet released (their memory cannot be reused). */
  get streamHeld(): number {
    return this.ring?.held ?? 0;
  }

  private streamRing(): StreamRing {
    if (!this.ring) {
      const memory = this.kernel.allocate?.(this.streamBytes);
      if (memory) this.ringMemory = memory;
      this.ring = new StreamRing(memory ?? pageAlignedMemory(this.streamBytes));
    }
    return this.ring;
  }

  acquire(byteLength: number): Uint8Array {
    const capacity = Math.max(MIN_CLASS_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, byteLength))));
    let backing = this.free.get(capacity)?.pop();
    if (backing) {
      if (!this.kernelOwned.has(backing)) this.retainedBytes -= capacity;
    } else {
      backing = this.kernel.allocate?.(capacity);
      if (backing) this.kernelOwned.add(backing);
      else backing = Buffer.from(new SharedArrayBuffer(capacity));
    }
    const view = backing.subarray(0, byteLength);
    this.backingOf.set(view, backing);
    return view;
  }

  release(buffer: Uint8Array): void {
    if (this.ring?.give(buffer)) return;
    const backing = this.backingOf.get(buffer);
    if (!backing) return;
    this.backingOf.delete(buffer);
    const owned = this.kernelOwned.has(backing);
    if (!owned && this.retainedBytes + backing.byteLength > this.maxRetainedBytes) return;
    const list = this.free.get(backing.byteLength) ?? [];
    list.push(backing);
    this.free.set(backing.byteLength, list);
    if (!owned) this.retainedBytes += backing.byteLength;
  }

  /** Gives the kernel's memory back (all buffers must have been released); the pool stays usable. */
  dispose(): void {
    for (const list of this.free.values()) {
      for (const backing of list) if (this.kernelOwned.has(backing)) this.kernel.free?.(backing);
    }
    this.free.clear();
    this.retainedBytes = 0;
    if (this.ringMemory) this.kernel.free?.(this.ringMemory);
    this.ring = undefined;
    this.ringMemory = undefined;
  }
}
