import * as zlib from "node:zlib";
import type { AtomicFileWriter } from "../atomic-file.js";
import { type Crc32Worker, crc32Combine } from "./crc32-worker.js";

/** torch (miniz) aligns every entry's data to 64 bytes through an "FB" extra field. */
const DATA_ALIGNMENT_BYTES = 64;
const U32_LIMIT = 0xffffffff;
const FLAG_DATA_DESCRIPTOR_UTF8 = 0x0808;
const FLAG_UTF8 = 0x0800;

interface WrittenEntry {
  name: Uint8Array;
  headerOffset: number;
  size: number;
  crc32: number;
  flags: number;
}

const utf8 = new TextEncoder();
const utf8Decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A run of an entry's bytes and its CRC-32 (from zero): known, or being computed on the worker. */
interface CrcPart {
  crc: number | Promise<number>;
  length: number;
}

/** The entry being written: the CRC-32s of its bytes' runs, in order, grow as its bytes pass. */
interface OpenEntry {
  name: Uint8Array;
  headerOffset: number;
  size: number;
  flags: number;
  needsZip64: boolean;
  written: number;
  parts: CrcPart[];
}

/** Pieces at least this long go to the CRC-32 worker; shorter ones cost less to CRC than to send. */
const OFFLOAD_MIN_BYTES = 256 << 10;

/**
 * Writes a stored (uncompressed) zip laid out like torch's PyTorchStreamWriter (miniz): local
 * headers with zero CRC/sizes and a data descriptor, data 64-byte aligned, zip64 end records always
 * present, zip64 extra fields only where a size or offset needs 64 bits. An entry's data streams
 * through in any pieces (`beginEntry`, `update` for each piece written, `endEntry`): its CRC-32 is
 * computed on the way (zlib's) and lands in the descriptor after the data and in the central
 * directory, so nothing is written twice or patched.
 */
export class TorchZipWriter {
  private readonly entries: WrittenEntry[] = [];
  private open: OpenEntry | undefined;
  /** CRC-32s being computed on the worker. */
  private readonly computing = new Set<Promise<number>>();

  constructor(
    private readonly out: AtomicFileWriter,
    /** Where `updateShared` pieces are CRC'd (else on the calling thread). */
    private readonly crcWorker?: Crc32Worker,
  ) {}

  /** Writes one entry of `size` bytes, taking them from `chunks`; returns its data offset. */
  async addEntry(
    name: string,
    size: number,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<number> {
    const dataOffset = await this.beginEntry(name, size);
    for await (const chunk of chunks) {
      this.update(chunk);
      await this.out.write(chunk);
    }
    await this.endEntry();
    return dataOffset;
  }

  /**
   * Writes the local header of an entry of `size` bytes; its data is appended to the file next, each
   * piece passed to `update`. Returns the data offset.
   */
  async beginEntry(name: string, size: number): Promise<number> {
    if (this.open) throw new Error(`zip entry ${name} begun before ${utf8Decode(this.open.name)} ended`);
    const headerOffset = this.out.bytesWritten;
    const nameBytes = utf8.encode(name);
    const needsZip64 = size >= U32_LIMIT || headerOffset >= U32_LIMIT;
    const zip64Extra = needsZip64 ? zip64ExtraField(size, headerOffset) : new Uint8Array(0);
    const unpadded = headerOffset + 30 + nameBytes.byteLength + zip64Extra.byteLength + 4;
    const padding = (DATA_ALIGNMENT_BYTES - (unpadded % DATA_ALIGNMENT_BYTES)) % DATA_ALIGNMENT_BYTES;
    const flags = size > 0 ? FLAG_DATA_DESCRIPTOR_UTF8 : FLAG_UTF8;

    const header = new Uint8Array(30 + nameBytes.byteLength + zip64Extra.byteLength + 4 + padding);
    const view = new DataView(header.buffer);
    view.setUint32(0, 0x04034b50, true);
    view.setUint16(6, flags, true);
    view.setUint16(26, nameBytes.byteLength, true);
    view.setUint16(28, zip64Extra.byteLength + 4 + padding, true);
    header.set(nameBytes, 30);
    header.set(zip64Extra, 30 + nameBytes.byteLength);
    const fb = 30 + nameBytes.byteLength + zip64Extra.byteLength;
    view.setUint16(fb, 0x4246, true); // "FB"
    view.setUint16(fb + 2, padding, true);
    header.fill(0x5a, fb + 4); // "Z"
    await this.out.write(header);
    this.open = { name: nameBytes, headerOffset, size, flags, needsZip64, written: 0, parts: [] };
    return this.out.bytesWritten;
  }

  /** Counts bytes of the open entry that were (or are being) appended to the file. */
  update(bytes: Uint8Array): void {
    const entry = this.openEntry();
    const last = entry.parts.at(-1);
    if (last && typeof last.crc === "number") {
      last.crc = crc32(bytes, last.crc);
      last.length += bytes.byteLength;
    } else entry.parts.push({ crc: crc32(bytes), length: bytes.byteLength });
    entry.written += bytes.byteLength;
  }

  /**
   * As `update`, for bytes in shared memory that stay unchanged until `computed()` settles: long
   * pieces are CRC'd on the worker thread, off the thread that calls this.
   */
  updateShared(bytes: Uint8Array): void {
    if (
      !this.crcWorker ||
      bytes.byteLength < OFFLOAD_MIN_BYTES ||
      !(bytes.buffer instanceof SharedArrayBuffer)
    ) {
      this.update(bytes);
      return;
    }
    const entry = this.openEntry();
    const crc = this.crcWorker.crc32(bytes);
    this.computing.add(crc);
    const settle = () => {
      this.computing.delete(crc);
    };
    crc.then(settle, settle);
    entry.parts.push({ crc, length: bytes.byteLength });
    entry.written += bytes.byteLength;
  }

  /** Settles once every piece given to `updateShared` so far has been read (their memory is free). */
  async computed(): Promise<void> {
    await Promise.all(this.computing);
  }

  /** Ends the CRC-32 worker (the writer is finished or given up). */
  async close(): Promise<void> {
    await Promise.allSettled(this.computing);
    await this.crcWorker?.dispose();
  }

  private openEntry(): OpenEntry {
    if (!this.open) throw new Error("zip data written outside an entry");
    return this.open;
  }

  /** Checks the open entry's size and writes its data descriptor. */
  async endEntry(): Promise<void> {
    const entry = this.open;
    if (!entry) throw new Error("no zip entry to end");
    const { name, size, written, needsZip64 } = entry;
    if (written !== size)
      throw new Error(`zip entry ${utf8Decode(name)}: wrote ${written} bytes, expected ${size}`);
    this.open = undefined;
    let crc = 0;
    for (const [i, part] of entry.parts.entries()) {
      const partCrc = await part.crc;
      crc = i === 0 ? partCrc : crc32Combine(crc, partCrc, part.length);
    }
    if (size > 0) {
      const descriptor = new Uint8Array(needsZip64 ? 24 : 16);
      const dv = new DataView(descriptor.buffer);
      dv.setUint32(0, 0x08074b50, true);
      dv.setUint32(4, crc, true);
      if (needsZip64) {
        dv.setBigUint64(8, BigInt(size), true);
        dv.setBigUint64(16, BigInt(size), true);
      } else {
        dv.setUint32(8, size, true);
        dv.setUint32(12, size, true);
      }
      await this.out.write(descriptor);
    }
    this.entries.push({ name, headerOffset: entry.headerOffset, size, crc32: crc, flags: entry.flags });
  }

  /** Central directory, zip64 end record and locator, classic end record. */
  async finish(): Promise<void> {
    if (this.open) throw new Error(`zip entry ${utf8Decode(this.open.name)} was not ended`);
    const directoryOffset = this.out.bytesWritten;
    const parts: Uint8Array[] = [];
    for (const entry of this.entries) {
      const needsZip64 = entry.size >= U32_LIMIT || entry.headerOffset >= U32_LIMIT;
      const extra = needsZip64 ? zip64ExtraField(entry.size, entry.headerOffset) : new Uint8Array(0);
      const record = new Uint8Array(46 + entry.name.byteLength + extra.byteLength);
      const view = new DataView(record.buffer);
      view.setUint32(0, 0x02014b50, true);
      view.setUint16(8, entry.flags, true);
      view.setUint32(16, entry.crc32, true);
      view.setUint32(20, Math.min(entry.size, U32_LIMIT), true);
      view.setUint32(24, Math.min(entry.size, U32_LIMIT), true);
      view.setUint16(28, entry.name.byteLength, true);
      view.setUint16(30, extra.byteLength, true);
      view.setUint32(42, Math.min(entry.headerOffset, U32_LIMIT), true);
      record.set(entry.name, 46);
      record.set(extra, 46 + entry.name.byteLength);
      parts.push(record);
    }
    const directorySize = parts.reduce((sum, part) => sum + part.byteLength, 0);
    const zip64EndOffset = directoryOffset + directorySize;
    const tail = new Uint8Array(56 + 20 + 22);
    const view = new DataView(tail.buffer);
    const count = this.entries.length;
    view.setUint32(0, 0x06064b50, true);
    view.setBigUint64(4, 44n, true);
    view.setUint16(12, 0x031e, true); // made by, as miniz writes it
    view.setUint16(14, 0x2d, true); // version needed: 4.5 (zip64)
    view.setBigUint64(24, BigInt(count), true);
    view.setBigUint64(32, BigInt(count), true);
    view.setBigUint64(40, BigInt(directorySize), true);
    view.setBigUint64(48, BigInt(directoryOffset), true);
    view.setUint32(56, 0x07064b50, true);
    view.setBigUint64(64, BigInt(zip64EndOffset), true);
    view.setUint32(72, 1, true);
    view.setUint32(76, 0x06054b50, true);
    view.setUint16(84, Math.min(count, 0xffff), true);
    view.setUint16(86, Math.min(count, 0xffff), true);
    view.setUint32(88, Math.min(directorySize, U32_LIMIT), true);
    view.setUint32(92, Math.min(directoryOffset, U32_LIMIT), true);
    parts.push(tail);
    await this.out.writev(parts);
  }
}

/** Zip64 extra: 64-bit sizes when the size needs them, then the header offset when it does. */
function zip64ExtraField(size: number, headerOffset: number): Uint8Array {
  const values: number[] = [];
  if (size >= U32_LIMIT) values.push(size, size);
  if (headerOffset >= U32_LIMIT) values.push(headerOffset);
  const field = new Uint8Array(4 + 8 * values.length);
  const view = new DataView(field.buffer);
  view.setUint16(0, 0x0001, true);
  view.setUint16(2, 8 * values.length, true);
  for (const [i, value] of values.entries()) view.setBigUint64(4 + 8 * i, BigInt(value), true);
  return field;
}

let crcTable: Uint32Array | undefined;

/** IEEE CRC-32: node:zlib's (Node ≥ 20.15) or a table fallback for older Node 20 releases. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (native) return native(bytes, previous);
  crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = ~previous >>> 0;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}
