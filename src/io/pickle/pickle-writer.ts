const utf8 = new TextEncoder();

/**
 * Emits protocol-2 pickle opcodes, the subset torch.save writes. Used to write checkpoints and, in
 * tests, to build hostile pickles byte by byte. It encodes exactly what it is told: no validation.
 */
export class PickleWriter {
  private chunks: number[] = [];
  private memoCount = 0;

  /** Raw bytes (tests use this to write opcodes the writer has no method for). */
  raw(...bytes: number[]): this {
    for (const byte of bytes) this.chunks.push(byte & 0xff);
    return this;
  }
  private text(value: string): this {
    for (const byte of utf8.encode(value)) this.chunks.push(byte);
    return this;
  }
  private u32(value: number): this {
    return this.raw(value, value >>> 8, value >>> 16, value >>> 24);
  }

  proto(version = 2): this {
    return this.raw(0x80, version);
  }
  stop(): this {
    return this.raw(0x2e);
  }
  mark(): this {
    return this.raw(0x28);
  }
  emptyDict(): this {
    return this.raw(0x7d);
  }
  emptyList(): this {
    return this.raw(0x5d);
  }
  emptyTuple(): this {
    return this.raw(0x29);
  }
  none(): this {
    return this.raw(0x4e);
  }
  bool(value: boolean): this {
    return this.raw(value ? 0x88 : 0x89);
  }
  /** BININT1 / BININT2 / BININT / LONG1, the smallest that fits, as Python's pickler chooses. */
  int(value: number | bigint): this {
    const n = BigInt(value);
    if (n >= 0n && n < 256n) return this.raw(0x4b, Number(n));
    if (n >= 0n && n < 65536n) return this.raw(0x4d, Number(n), Number(n) >> 8);
    if (n >= -(2n ** 31n) && n < 2n ** 31n) return this.raw(0x4a).u32(Number(BigInt.asUintN(32, n)));
    const bytes: number[] = [];
    let rest = n;
    do {
      bytes.push(Number(rest & 0xffn));
      rest >>= 8n;
    } while (
      !(rest === 0n && (bytes.at(-1)! & 0x80) === 0) &&
      !(rest === -1n && (bytes.at(-1)! & 0x80) !== 0)
    );
    return this.raw(0x8a, bytes.length, ...bytes);
  }
  float(value: number): this {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, value, false);
    return this.raw(0x47, ...bytes);
  }
  /** BINUNICODE, as protocol 2 writes every str. */
  string(value: string): this {
    const bytes = utf8.encode(value);
    this.raw(0x58).u32(bytes.byteLength);
    for (const byte of bytes) this.chunks.push(byte);
    return this;
  }
  binBytes(value: Uint8Array): this {
    this.raw(0x42).u32(value.byteLength);
    for (const byte of value) this.chunks.push(byte);
    return this;
  }
  global(module: string, name: string): this {
    return this.raw(0x63).text(`${module}\n${name}\n`);
  }
  tuple(): this {
    return this.raw(0x74);
  }
  tuple1(): this {
    return this.raw(0x85);
  }
  tuple2(): this {
    return this.raw(0x86);
  }
  tuple3(): this {
    return this.raw(0x87);
  }
  reduce(): this {
    return this.raw(0x52);
  }
  build(): this {
    return this.raw(0x62);
  }
  setItem(): this {
    return this.raw(0x73);
  }
  setItems(): this {
    return this.raw(0x75);
  }
  append(): this {
    return this.raw(0x61);
  }
  appends(): this {
    return this.raw(0x65);
  }
  binPersId(): this {
    return this.raw(0x51);
  }
  /** BINPUT / LONG_BINPUT of the top of stack under the next memo index; returns that index. */
  put(): number {
    const index = this.memoCount++;
    if (index < 256) this.raw(0x71, index);
    else this.raw(0x72).u32(index);
    return index;
  }
  get(index: number): this {
    return index < 256 ? this.raw(0x68, index) : this.raw(0x6a).u32(index);
  }

  get length(): number {
    return this.chunks.length;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}
