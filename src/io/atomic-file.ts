import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { GyozaError } from "../errors.js";
import { ioError } from "./byte-source.js";
import { type BlockHash, type BlockMemory, DirectAppender } from "./direct-appender.js";

/** Temp files of interrupted writes, removed on exit or signal (so Ctrl-C leaves nothing behind). */
const pendingTempFiles = new Set<string>();
/** Staging folders of folder-sized outputs (gyoza publish), removed likewise. */
const pendingTempFolders = new Set<string>();

/** Marks a staging folder for removal if the process is interrupted; call `done` once it is renamed or removed. */
export function trackTempFolder(path: string): { done(): void } {
  pendingTempFolders.add(path);
  return { done: () => pendingTempFolders.delete(path) };
}

/**
 * Writes a file so that it either appears complete or not at all: bytes go to a temp file beside
 * the target, are fsynced, then renamed over it. `abort()` (or a failure) removes the temp file.
 * With `direct`, appends go in aligned blocks that bypass the page cache where the file system allows
 * (src/io/direct-appender.ts), optionally hashed on the way, until `endAppends`, the first `writeAt`
 * or the commit: for large outputs written once, front to back.
 */
export class AtomicFileWriter {
  private position = 0;
  private finished = false;

  private constructor(
    readonly path: string,
    readonly tempPath: string,
    private readonly handle: FileHandle,
    private appender: DirectAppender | undefined,
  ) {}

  /** `direct`: append in blocks in that memory, with O_DIRECT where allowed; `hash`: hash them. */
  static async create(
    path: string,
    options: { direct?: BlockMemory; hash?: BlockHash } = {},
  ): Promise<AtomicFileWriter> {
    const tempPath = join(
      dirname(path),
      `.${basename(path)}.${randomBytes(4).toString("hex")}.gyoza-partial`,
    );
    let handle: FileHandle;
    try {
      handle = await open(tempPath, "wx", 0o644);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
        throw new GyozaError("io", `output folder ${dirname(path)} does not exist`, {
          file: path,
          fix: "create it first (the gyoza CLI: --mkdir)",
          cause,
        });
      }
      throw ioError(path, cause);
    }
    pendingTempFiles.add(tempPath);
    let appender: DirectAppender | undefined;
    if (options.direct) {
      try {
        appender = await DirectAppender.open(tempPath, handle, {
          memory: options.direct,
          ...(options.hash ? { hash: options.hash } : {}),
        });
      } catch (cause) {
        await handle.close().catch(() => {});
        await unlink(tempPath).catch(() => {});
        pendingTempFiles.delete(tempPath);
        throw ioError(path, cause);
      }
    }
    return new AtomicFileWriter(path, tempPath, handle, appender);
  }

  /** Whether appends currently bypass the page cache. */
  get writingDirect(): boolean {
    return this.appender?.usingDirect ?? false;
  }

  get bytesWritten(): number {
    return this.position;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.appender) return this.appendDirect([bytes]);
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
    if (this.appender) return this.appendDirect(buffers);
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

  /**
   * Up to `max` bytes of the current append block, to be written in place and then passed to `commitAppend`;
   * undefined when appends do not go through blocks (write a buffer instead).
   */
  async reserveAppend(max: number): Promise<Uint8Array | undefined> {
    if (!this.appender) return undefined;
    try {
      return await this.appender.reserve(max);
    } catch (cause) {
      await this.abort();
      throw ioError(this.path, cause);
    }
  }

  /** Appends the first `bytes` of what `reserveAppend` returned, which the caller has written. */
  commitAppend(bytes: number): void {
    this.appender!.commit(bytes);
    this.position += bytes;
  }

  private async appendDirect(buffers: readonly Uint8Array[]): Promise<void> {
    try {
      for (const bytes of buffers) {
        await this.appender!.append(bytes);
        this.position += bytes.byteLength;
      }
    } catch (cause) {
      await this.abort();
      throw ioError(this.path, cause);
    }
  }

  /**
   * Ends block appends: the last block is written (padded), every block written and hashed, and the
   * file cut to its real length. Later appends go through the ordinary descriptor.
   */
  async endAppends(): Promise<void> {
    const appender = this.appender;
    if (!appender) return;
    this.appender = undefined;
    try {
      await appender.finish();
      await this.handle.truncate(this.position);
    } catch (cause) {
      await this.abort();
      throw ioError(this.path, cause);
    }
  }

  /** Writes at an absolute position without moving the append position (to patch a header). */
  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    await this.endAppends();
    try {
      await this.handle.write(bytes, 0, bytes.byteLength, position);
    } catch (cause) {
      await this.abort();
      throw ioError(this.path, cause);
    }
  }

  async commit(): Promise<void> {
    if (this.finished) return;
    await this.endAppends();
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
    const appender = this.appender;
    this.appender = undefined;
    await appender?.close();
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
  for (const path of pendingTempFolders) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {}
    pendingTempFolders.delete(path);
  }
}

/** Writes a small file whole: temp file, fsync, rename (the temp file removed when a step fails). */
export async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const writer = await AtomicFileWriter.create(path);
  await writer.write(bytes);
  await writer.commit();
}
