import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import type { ChunkSha256 } from "./chunk-sha256.js";

/**
 * Appends to a file in large aligned blocks, written with O_DIRECT where the file system allows: from
 * this memory to the disk, with no copy into the page cache. On a small machine that copy is the
 * largest cost of writing a multi-GB checkpoint (several CPU-seconds per 2 GB, competing with the merge
 * arithmetic and the hashing for the same cores), and a freshly written model evicts the inputs from
 * the cache. Each block can also be hashed (sha256 on a worker thread, straight from the block's shared
 * memory): the caller's chunks are free as soon as they are copied in, and hashing overlaps with
 * everything else instead of holding up the next chunk.
 *
 * O_DIRECT wants the buffer address, the file offset and the length aligned to the device's logical
 * block size; DIRECT_ALIGN covers every common one. The last, partial block is written padded with
 * zeros: the owner truncates the file to its real length afterwards. Where the file system refuses
 * O_DIRECT (at open or at the first write: EINVAL), the same blocks go through the ordinary descriptor,
 * so the bytes are identical either way.
 */
export const DIRECT_ALIGN = 4096;
/** Bytes per block write: 4 MiB writes keep the disk busy without much memory. */
export const DIRECT_BLOCK_BYTES = 4 << 20;
/** Blocks in all: one being filled while the others are written and hashed. */
const BLOCK_COUNT = 6;
const WASM_PAGE_BYTES = 65536;

interface WasmMemoryApi {
  Memory: new (descriptor: {
    initial: number;
    maximum: number;
    shared: true;
  }) => { buffer: SharedArrayBuffer };
}

/**
 * `bytes` of shared memory starting on a page boundary, as O_DIRECT reads and writes need: a
 * WebAssembly memory is mapped whole, where an ordinary Buffer's or SharedArrayBuffer's start is not
 * guaranteed to be aligned. Shared, so worker threads (the hashers) read it in place.
 */
export function pageAlignedMemory(bytes: number): Buffer {
  const pages = Math.ceil(bytes / WASM_PAGE_BYTES);
  const memory = new (globalThis as unknown as { WebAssembly: WasmMemoryApi }).WebAssembly.Memory({
    initial: pages,
    maximum: pages,
    shared: true,
  });
  return Buffer.from(memory.buffer, 0, bytes);
}

/**
 * Where the blocks live and how bytes get into them: a merge kernel's (src/kernels/merge-kernel.ts),
 * so that chunks in the kernel's memory are copied at memory speed. Both are optional.
 */
export interface BlockMemory {
  /** Must return page-aligned buffers in shared memory (the wasm kernel's arena does), or undefined. */
  allocate?: (bytes: number) => Buffer | undefined;
  free?: (buffer: Buffer) => void;
  copy?: (target: Uint8Array, source: Uint8Array) => void;
}

/**
 * Hash the appended bytes from file offset `from` on (a safetensors file's data section). A block is
 * reused only once `update` has settled: any reader of block memory may stand in for the hasher
 * (the torch writer's CRC-32 thread waits there for the pieces it reads in place).
 */
export interface BlockHash {
  hasher: Pick<ChunkSha256, "update">;
  from: number;
}

export class DirectAppender {
  private readonly free: Buffer[];
  private current: Buffer | null = null;
  private fill = 0;
  /** Bytes of the current block handed out by `reserve` and not yet committed. */
  private reserved = 0;
  /** File offset of the block being filled. */
  private position: number;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;
  private closed = false;
  /** Cleared when the file system refuses an O_DIRECT write. */
  private direct: boolean;

  private constructor(
    /** The O_DIRECT descriptor, undefined where it cannot be opened. */
    private readonly directHandle: FileHandle | undefined,
    /** The file's ordinary descriptor. */
    private readonly buffered: FileHandle,
    private readonly blocks: Buffer[],
    start: number,
    private readonly memory: BlockMemory,
    private readonly hash: BlockHash | undefined,
  ) {
    this.free = [...blocks];
    this.position = start;
    this.direct = directHandle !== undefined;
  }

  /**
   * Appends to `path` (already created, `buffered` its ordinary handle) from `start`, with O_DIRECT
   * where it can be opened (`start` a multiple of DIRECT_ALIGN) and the ordinary descriptor elsewhere.
   */
  static async open(
    path: string,
    buffered: FileHandle,
    options: { start?: number; memory?: BlockMemory; hash?: BlockHash } = {},
  ): Promise<DirectAppender> {
    const { start = 0, memory = {}, hash } = options;
    let direct: FileHandle | undefined;
    if (constants.O_DIRECT !== undefined && start % DIRECT_ALIGN === 0) {
      direct = await open(path, constants.O_WRONLY | constants.O_DIRECT).catch(() => undefined);
    }
    const given: Buffer[] = [];
    for (let i = 0; i < BLOCK_COUNT; i++) {
      const block = memory.allocate?.(DIRECT_BLOCK_BYTES);
      if (block) given.push(block);
    }
    if (given.length === BLOCK_COUNT) return new DirectAppender(direct, buffered, given, start, memory, hash);
    for (const block of given) memory.free?.(block);
    const own = pageAlignedMemory(BLOCK_COUNT * DIRECT_BLOCK_BYTES);
    const blocks = Array.from({ length: BLOCK_COUNT }, (_, index) =>
      own.subarray(index * DIRECT_BLOCK_BYTES, (index + 1) * DIRECT_BLOCK_BYTES),
    );
    const copy = memory.copy ? { copy: memory.copy } : {};
    return new DirectAppender(direct, buffered, blocks, start, copy, hash);
  }

  /** Whether blocks go through O_DIRECT (false where the file system refuses it). */
  get usingDirect(): boolean {
    return this.direct;
  }

  /** Copies `bytes` into blocks, starting each block's write as it fills; waits only for a free block. */
  async append(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.byteLength) {
      const target = await this.reserve(bytes.byteLength - at);
      const n = target.byteLength;
      if (this.memory.copy) this.memory.copy(target, bytes.subarray(at, at + n));
      else target.set(bytes.subarray(at, at + n));
      this.commit(n);
      at += n;
    }
  }

  /**
   * The free part of the block being filled, at most `max` bytes (at least one while `max` > 0), for a
   * producer to write the next bytes into in place instead of handing over a buffer to copy. It is in
   * the block memory (the merge kernel's, where it had room). `commit` then says how many were written.
   */
  async reserve(max: number): Promise<Uint8Array> {
    this.throwIfFailed();
    if (!this.current) this.current = await this.takeBlock();
    this.reserved = Math.min(max, DIRECT_BLOCK_BYTES - this.fill);
    return this.current.subarray(this.fill, this.fill + this.reserved);
  }

  /** Appends the first `bytes` of the range `reserve` returned (written in place by the caller). */
  commit(bytes: number): void {
    if (!this.current || !Number.isInteger(bytes) || bytes < 0 || bytes > this.reserved)
      throw new RangeError(`cannot commit ${bytes} bytes: ${this.reserved} reserved`);
    this.reserved = 0;
    this.fill += bytes;
    if (this.fill === DIRECT_BLOCK_BYTES) this.submit(DIRECT_BLOCK_BYTES, DIRECT_BLOCK_BYTES);
  }

  /**
   * Writes the partial last block (zero-padded to DIRECT_ALIGN when direct), waits for every write and
   * hash, and closes the direct descriptor. The file may then be longer than what was appended: the
   * caller truncates it.
   */
  async finish(): Promise<void> {
    if (this.current && this.fill > 0) {
      const padded = this.direct ? Math.ceil(this.fill / DIRECT_ALIGN) * DIRECT_ALIGN : this.fill;
      this.current.fill(0, this.fill, padded);
      this.submit(padded, this.fill);
    }
    await this.settle();
    this.throwIfFailed();
    await this.close();
  }

  /** Waits for the writes in flight (their errors dropped), closes the direct descriptor, frees the blocks. */
  async close(): Promise<void> {
    await this.settle();
    if (this.closed) return;
    this.closed = true;
    await this.directHandle?.close().catch(() => {});
    for (const block of this.blocks) this.memory.free?.(block);
  }

  private async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Writes `length` bytes of the current block (`filled` of them appended, the rest padding) and hashes it. */
  private submit(length: number, filled: number): void {
    const block = this.current!;
    const position = this.position;
    this.current = null;
    this.fill = 0;
    this.position += filled;
    const hashed = this.hashBlock(block, filled, position);
    const done: Promise<void> = Promise.all([this.writeBlock(block, length, position), hashed]).then(
      () => {
        this.free.push(block);
        this.inFlight.delete(done);
      },
      (error: unknown) => {
        this.failure ??= error;
        this.inFlight.delete(done);
      },
    );
    this.inFlight.add(done);
  }

  /** Hands the block's hashed range to the hasher now, so blocks are hashed in file order. */
  private hashBlock(block: Buffer, filled: number, position: number): Promise<void> {
    if (!this.hash) return Promise.resolve();
    const from = Math.max(0, this.hash.from - position);
    if (from >= filled) return Promise.resolve();
    return this.hash.hasher.update([block.subarray(from, filled)]);
  }

  private async takeBlock(): Promise<Buffer> {
    while (this.free.length === 0) {
      await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
    return this.free.pop()!;
  }

  private async writeBlock(block: Buffer, length: number, position: number): Promise<void> {
    let done = 0;
    const direct = this.directHandle;
    if (direct && this.direct) {
      try {
        while (done < length) {
          const { bytesWritten } = await direct.write(block, done, length - done, position + done);
          done += bytesWritten;
          // a short write leaves an unaligned rest, which only the ordinary descriptor can write
          if (bytesWritten === 0 || done % DIRECT_ALIGN !== 0) break;
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EINVAL") throw error;
        this.direct = false; // refused by this file system: the rest goes the ordinary way
      }
    }
    while (done < length) {
      const { bytesWritten } = await this.buffered.write(block, done, length - done, position + done);
      if (bytesWritten === 0) throw new Error(`no bytes written at offset ${position + done}`);
      done += bytesWritten;
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
