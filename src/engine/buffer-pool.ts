/**
 * Reuses the fixed-size buffers a streaming pass churns through (reads, kernel outputs). Fresh
 * large allocations are fresh pages: every one costs page faults and, freed, garbage-collector
 * work, which at disk speed adds up to seconds per model. Buffers not acquired here are ignored
 * by `release`, so producers may mix pooled and one-off buffers freely.
 */
export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>();
  private readonly owned = new WeakSet<ArrayBufferLike>();
  private retainedBytes = 0;

  /** Buffers kept for reuse beyond this are dropped (the pool never grows past it). */
  constructor(private readonly maxRetainedBytes = 256 << 20) {}

  acquire(byteLength: number): Uint8Array {
    const reused = this.free.get(byteLength)?.pop();
    if (reused) {
      this.retainedBytes -= byteLength;
      return reused;
    }
    const fresh = Buffer.allocUnsafeSlow(byteLength); // every byte is overwritten by its user
    this.owned.add(fresh.buffer);
    return fresh;
  }

  release(buffer: Uint8Array): void {
    if (
      !this.owned.has(buffer.buffer) ||
      buffer.byteOffset !== 0 ||
      buffer.byteLength !== buffer.buffer.byteLength
    )
      return;
    if (this.retainedBytes + buffer.byteLength > this.maxRetainedBytes) return;
    const list = this.free.get(buffer.byteLength) ?? [];
    if (list.includes(buffer)) return;
    list.push(buffer);
    this.free.set(buffer.byteLength, list);
    this.retainedBytes += buffer.byteLength;
  }
}
