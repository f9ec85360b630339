import { GyozaError } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";
import { READ_CHUNK_BYTES } from "./limits.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });
/** Strings up to this length are decoded by hand when they are ASCII. */
const SHORT_STRING_BYTES = 256;

/**
 * Sequential reads over a ByteSource through a buffer, so the interpreter can stay synchronous
 * between refills. Callers `fill(n)` before reading n bytes; fill refuses to read past the source.
 */
export class ByteCursor {
  private buffer = new Uint8Array(0);
  private view = new DataView(this.buffer.buffer);
  private text = Buffer.from(this.buffer.buffer);
  private bufferStart = 0;
  /** Absolute offset of the next byte. */
  position: number;

  constructor(
    readonly source: ByteSource,
    start = 0,
  ) {
    this.position = start;
  }

  /** Bytes buffered from the current position. */
  get available(): number {
    return this.bufferStart + this.buffer.byteLength - this.position;
  }

  /** Bytes left in the source from the current position. */
  get remaining(): number {
    return this.source.size - this.position;
  }

  /** Makes `n` bytes available, or throws a format error naming `what` if the source ends first. */
  async fill(n: number, what: string): Promise<void> {
    if (this.available >= n) return;
    if (n > this.remaining) {
      throw new GyozaError(
        "format",
        `pickle truncated: ${what} needs ${n} bytes but only ${this.remaining} remain`,
        { file: this.source.name },
      );
    }
    const length = Math.min(Math.max(n, READ_CHUNK_BYTES), this.remaining);
    // Copied (new Uint8Array, not .slice(), which is a view on a Buffer): a source may reuse its buffer.
    this.buffer = new Uint8Array(await this.source.read(this.position, length));
    this.view = new DataView(this.buffer.buffer);
    this.text = Buffer.from(this.buffer.buffer);
    this.bufferStart = this.position;
  }

  private take(n: number): number {
    const at = this.position - this.bufferStart;
    this.position += n;
    return at;
  }

  u8(): number {
    return this.buffer[this.take(1)]!;
  }
  u16(): number {
    return this.view.getUint16(this.take(2), true);
  }
  i32(): number {
    return this.view.getInt32(this.take(4), true);
  }
  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }
  u64(): bigint {
    return this.view.getBigUint64(this.take(8), true);
  }
  f64BigEndian(): number {
    return this.view.getFloat64(this.take(8), false);
  }
  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.buffer.slice(at, at + n);
  }
  utf8(n: number, what: () => string): string {
    const at = this.take(n);
    if (n <= SHORT_STRING_BYTES) {
      // TextDecoder's per-call cost dominates for the short ASCII keys pickles are full of.
      let ascii = true;
      for (let i = at; i < at + n; i++) if (this.buffer[i]! >= 0x80) ascii = false;
      if (ascii) return this.text.toString("latin1", at, at + n);
    }
    try {
      return utf8.decode(this.buffer.subarray(at, at + n));
    } catch {
      throw new GyozaError("format", `${what()} is not valid UTF-8`, { file: this.source.name });
    }
  }

  /** A newline-terminated line of at most `maxBytes` (newline excluded), for text opcodes. */
  async line(maxBytes: number, what: string): Promise<string> {
    await this.fill(Math.min(maxBytes + 1, this.remaining), what);
    const at = this.position - this.bufferStart;
    const end = Math.min(this.buffer.byteLength, at + maxBytes + 1);
    const newline = this.buffer.subarray(at, end).indexOf(0x0a);
    if (newline < 0) {
      throw new GyozaError("format", `${what}: no newline within ${maxBytes} bytes`, {
        file: this.source.name,
      });
    }
    const text = this.utf8(newline, () => what);
    this.position += 1;
    return text;
  }
}
