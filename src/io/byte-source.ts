import { type FileHandle, open } from "node:fs/promises";
import { GyozaError } from "../errors.js";
import { type QueuedFile, ReadQueue } from "./read-queue.js";

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
  close(): Promise<void>;
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
/** Every file read goes through this queue: a few at a time, neighbouring ranges joined. */
const fileReads = new ReadQueue(READS_IN_FLIGHT, undefined, undefined, JOIN_GAP_BYTES);

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

  async close(): Promise<void> {
    await this.handle.close();
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
