import { type ByteSource, checkRange } from "./byte-source.js";

/**
 * Several sources read as one, end to end: a tensor joined from parts (q, k, v → in_proj_weight)
 * streams in ranges like any other, each range read from the parts it covers. Closing it closes
 * nothing: the parts belong to their checkpoints.
 */
export class ConcatByteSource implements ByteSource {
  readonly size: number;
  /** Where each part starts in the joined bytes. */
  private readonly starts: number[];

  constructor(
    private readonly parts: readonly ByteSource[],
    readonly name = parts.map((part) => part.name).join(" + "),
  ) {
    this.starts = [];
    let size = 0;
    for (const part of parts) {
      this.starts.push(size);
      size += part.size;
    }
    this.size = size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const index = this.partAt(offset);
    const part = this.parts[index];
    const local = offset - this.starts[index]!;
    // a range inside one part is that part's read (no copy)
    if (part && local + length <= part.size) return part.read(local, length);
    return this.readInto(new Uint8Array(length), offset);
  }

  async readInto(target: Uint8Array, offset: number): Promise<Uint8Array> {
    checkRange(this, offset, target.byteLength);
    const reads: Promise<Uint8Array>[] = [];
    let done = 0;
    for (let index = this.partAt(offset); done < target.byteLength; index++) {
      const part = this.parts[index]!;
      const local = offset + done - this.starts[index]!;
      const length = Math.min(part.size - local, target.byteLength - done);
      if (length > 0) reads.push(part.readInto(target.subarray(done, done + length), local));
      done += Math.max(0, length);
    }
    await Promise.all(reads);
    return target;
  }

  async close(): Promise<void> {}

  /** The part holding byte `offset` (the last part whose start is at or before it, skipping empty parts). */
  private partAt(offset: number): number {
    let index = 0;
    while (index + 1 < this.parts.length && this.starts[index + 1]! <= offset) index++;
    return index;
  }
}
