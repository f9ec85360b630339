import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { GyozaError } from "../errors.js";
import { type QueuedFile, ReadQueue, type StreamMemory } from "./read-queue.js";

export type { StreamMemory };

/**
 * Random-access bytes. Every parser reads through this interface and never touches `fs`, so the
 * same code serves files, in-memory buffers (tests, fuzzing) and slices (a zip entry).
 */
export interface ByteSource {
  /** A name for error messages (usually the path). */
  readonly name: string;
  readonly size: number;
  /**
   * Exactly `length` bytes at `offset`. Reading outside [0, size) is a format error, never a short read.
   * The result may be a view into a shared buffer: copy it if you keep it past the next read.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Fills `target` with the bytes at `offset` (lets hot loops reuse buffers). */
  readInto(target: Uint8Array, offset: number): Promise<Uint8Array>;
  /**
   * `length` bytes at `offset` in a buffer from `memory` (the caller releases it there), for sources
   * that read large streams their own way (a file read with O_DIRECT: `FileByteSource`). Without it,
   * a streaming reader uses `readInto` a buffer of `memory`'s.
   */
  readStreamed?(offset: number, length: number, memory: StreamMemory): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** `length` bytes at `offset` of `source` in a buffer from `memory`, read the source's best way. */
export function readStreamed(
  source: ByteSource,
  offset: number,
  length: number,
  memory: StreamMemory,
): Promise<Uint8Array> {
  if (source.readStreamed) return source.readStreamed(offset, length, memory);
  return source.readInto(memory.acquireStream(length), offset);
}

export function checkRange(source: { name: string; size: number }, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > source.size
  ) {
    throw new GyozaError(
      "format",
      `read of ${length} bytes at offset ${offset} runs past the end of the data (${source.size} bytes)`,
      { file: source.name },
    );
  }
}

export class BufferByteSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly name = "<buffer>",
  ) {
    this.size = bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  async readInto(target: Uint8Array, offset: number): Promise<Uint8Array> {
    target.set(await this.read(offset, target.byteLength));
    return target;
  }
  async close(): Promise<void> {}
}

/** File reads in flight at once, over every open file (see ReadQueue). */
export const READS_IN_FLIGHT = 2;
/**
 * Reads this close are joined into one call, the bytes between them read and dropped: covers the
 * 64–200 bytes of zip records between two tensors of a torch `.ckpt` (see ReadQueue), and costs
 * less to read than a call takes to make.
 */
export const JOIN_GAP_BYTES = 4096;
/** Every ordinary file read goes through this queue: a few at a time, neighbouring ranges joined. */
const fileReads = new ReadQueue(READS_IN_FLIGHT, undefined, undefined, JOIN_GAP_BYTES);
/**
 * O_DIRECT reads in flight at once, over every file. Each waits on the device itself (no kernel
 * read-ahead runs ahead of it), so more run at once than ordinary reads.
 */
export const DIRECT_READS_IN_FLIGHT = 4;
/** The streamed reads of files read past the page cache (`FileByteSource.readDirectly`). */
const directReads = new ReadQueue(DIRECT_READS_IN_FLIGHT, undefined, undefined, JOIN_GAP_BYTES);

export class FileByteSource implements ByteSource {
  /** The handle and name as the read queue takes them. */
  private readonly file: QueuedFile;

  private constructor(
    private readonly handle: FileHandle,
    readonly name: string,
    readonly size: number,
  ) {
    this.file = { handle, name };
  }

  static async open(path: string): Promise<FileByteSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (cause) {
      throw ioError(path, cause);
    }
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      throw new GyozaError("io", "not a regular file", { file: path });
    }
    return new FileByteSource(handle, path, stat.size);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    // every byte is overwritten by the read: skip zero-filling (it costs as much as a memcpy)
    return this.readInto(Buffer.allocUnsafeSlow(length), offset);
  }

  /** Fills `target` from `offset`; lets hot loops reuse one buffer. */
  async readInto(target: Uint8Array, offset: number): Promise<Uint8Array> {
    checkRange(this, offset, target.byteLength);
    return fileReads.read(this.file, target, offset);
  }

  /** With direct reads on (`readDirectly`), read with O_DIRECT; else into a buffer of `memory`'s. */
  async readStreamed(offset: number, length: number, memory: StreamMemory): Promise<Uint8Array> {
    checkRange(this, offset, length);
    // a part of an aligned read keeps the offset's alignment: 8 suits every element type
    if (this.file.direct && !this.file.directRefused && length > 0 && offset % 8 === 0)
      return directReads.readDirect(this.file, offset, length, memory);
    return fileReads.read(this.file, memory.acquireStream(length), offset);
  }

  /**
   * From now on, streamed reads (`readStreamed`) go past the page cache (O_DIRECT), straight into the
   * caller's memory. For a file that is not in the cache and is read once, front to back or nearly:
   * the copy through the cache costs about a CPU-second per 2 GB on a small machine, and the cached
   * inputs evict everything else. False where the file system refuses O_DIRECT (tmpfs, some FUSE).
   */
  async readDirectly(): Promise<boolean> {
    if (this.file.direct) return true;
    if (constants.O_DIRECT === undefined) return false;
    const direct = await open(this.name, constants.O_RDONLY | constants.O_DIRECT).catch(() => undefined);
    if (!direct) return false;
    // the same file as the ordinary descriptor (not one renamed into its place since)
    const [a, b] = await Promise.all([this.handle.stat(), direct.stat()]);
    if (a.ino !== b.ino || a.dev !== b.dev) {
      await direct.close();
      return false;
    }
    this.file.direct = direct;
    return true;
  }

  /** The ordinary descriptor's number (for the kernel calls that take one, such as readahead). */
  get fd(): number {
    return this.handle.fd;
  }

  async close(): Promise<void> {
    const direct = this.file.direct;
    this.file.direct = undefined;
    await Promise.all([this.handle.close(), direct?.close()]);
  }
}

/** A window [offset, offset+size) of another source, e.g. one zip entry. Reads cannot leave it. */
export class SliceByteSource implements ByteSource {
  constructor(
    readonly parent: ByteSource,
    readonly offset: number,
    readonly size: number,
    readonly name = parent.name,
  ) {
    checkRange(parent, offset, size);
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.parent.read(this.offset + offset, length);
  }
  async readInto(target: Uint8Array, offset: number): Promise<Uint8Array> {
    checkRange(this, offset, target.byteLength);
    return this.parent.readInto(target, this.offset + offset);
  }
  async readStreamed(offset: number, length: number, memory: StreamMemory): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return readStreamed(this.parent, this.offset + offset, length, memory);
  }
  async close(): Promise<void> {}
}

export function ioError(file: string, cause: unknown): GyozaError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code === "ENOENT"
      ? "no such file"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "ENOSPC"
          ? "no space left on the device"
          : code === "EISDIR"
            ? "is a directory"
            : code === "ENOTDIR"
              ? "a part of this path is a file, not a folder"
              : String((cause as Error | undefined)?.message ?? cause);
  return new GyozaError("io", reason, { file, cause });
}
