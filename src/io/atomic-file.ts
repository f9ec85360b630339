import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ioError } from "./byte-source.js";

/** Temp files of interrupted writes, removed on exit or signal (so Ctrl-C leaves nothing behind). */
const pendingTempFiles = new Set<string>();

/**
 * Writes a file so that it either appears complete or not at all: bytes go to a temp file beside
 * the target, are fsynced, then renamed over it. `abort()` (or a failure) removes the temp file.
 */
export class AtomicFileWriter {
  private position = 0;
  private finished = false;

  private constructor(
    readonly path: string,
    readonly tempPath: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string): Promise<AtomicFileWriter> {
    const tempPath = join(
      dirname(path),
      `.${basename(path)}.${randomBytes(4).toString("hex")}.gyoza-partial`,
    );
    let handle: FileHandle;
    try {
      handle = await open(tempPath, "wx", 0o644);
    } catch (cause) {
      throw ioError(path, cause);
    }
    pendingTempFiles.add(tempPath);
    return new AtomicFileWriter(path, tempPath, handle);
  }

  get bytesWritten(): number {
    return this.position;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    try {
      while (done < bytes.byteLength) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.byteLength - done, this.position);
        done += bytesWritten;
        this.position += bytesWritten;
      }
    } catch (cause) {
      await this.abort();
      throw ioError(this.path, cause);
    }
  }

  /** Appends several buffers with one system call where the OS allows (fewer, larger writes). */
  async writev(buffers: readonly Uint8Array[]): Promise<void> {
    const total = buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0);
    let written: number;
    try {
      ({ bytesWritten: written } = await this.handle.writev(buffers as Uint8Array[], this.position));
    } catch (cause) {
      await this.abort();
      throw ioError(this.path, cause);
    }
    this.position += written;
    if (written === total) return;
    // a short write: finish buffer by buffer from where it stopped
    let skip = written;
    for (const buffer of buffers) {
      if (skip >= buffer.byteLength) {
        skip -= buffer.byteLength;
        continue;
      }
      await this.write(buffer.subarray(skip));
      skip = 0;
    }
  }

  /** Writes at an absolute position without moving the append position (to patch a header). */
  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    try {
      await this.handle.write(bytes, 0, bytes.byteLength, position);
    } catch (cause) {
      await this.abort();
      throw ioError(this.path, cause);
    }
  }

  async commit(): Promise<void> {
    if (this.finished) return;
    try {
      await this.handle.sync();
      await this.handle.close();
      this.finished = true;
      await rename(this.tempPath, this.path);
      pendingTempFiles.delete(this.tempPath);
    } catch (cause) {
      await this.abort();
      throw ioError(this.path, cause);
    }
  }

  async abort(): Promise<void> {
    if (!this.finished) {
      this.finished = true;
      await this.handle.close().catch(() => {});
    }
    await unlink(this.tempPath).catch(() => {});
    pendingTempFiles.delete(this.tempPath);
  }
}

/** Synchronous last-chance cleanup for the CLI's signal and exit handlers. */
export function removePendingTempFilesSync(unlinkSync: (path: string) => void): void {
  for (const path of pendingTempFiles) {
    try {
      unlinkSync(path);
    } catch {}
    pendingTempFiles.delete(path);
  }
}
