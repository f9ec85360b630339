import type { ByteSource } from "../io/byte-source.js";

/** Chunk headers are read in blocks of this size, so files of many small chunks cost few reads. */
export const READ_AHEAD_BYTES = 64 * 1024;

/**
 * Serves small reads from one cached block of the source. Container walkers read a few header bytes
 * per chunk; without this, a hostile file of a million empty chunks means a million file reads.
 */
export class ReadAhead {
  private blockStart = 0;
  private block: Uint8Array = new Uint8Array(0);

  constructor(readonly source: ByteSource) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (length > READ_AHEAD_BYTES) return this.source.read(offset, length);
    if (offset < this.blockStart || offset + length > this.blockStart + this.block.length) {
      const size = Math.min(READ_AHEAD_BYTES, this.source.size - offset);
      // Let the source report reads past the end in its own words.
      if (size < length) return this.source.read(offset, length);
      this.block = Uint8Array.from(await this.source.read(offset, size));
      this.blockStart = offset;
    }
    return this.block.subarray(offset - this.blockStart, offset - this.blockStart + length);
  }
}
