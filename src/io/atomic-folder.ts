import { randomBytes } from "node:crypto";
import { type Dirent, constants as fsConstants } from "node:fs";
import { copyFile, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { GyozaError } from "../errors.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { trackTempFolder } from "./atomic-file.js";
import { ioError } from "./byte-source.js";

/** How often a copy's progress is sampled (the copy itself is one system call, or a clone). */
const COPY_PROGRESS_INTERVAL_MS = 200;

export interface AtomicFolderOptions {
  /** Replace an existing non-empty target as a whole (it stays whole until the new one is complete). */
  replace?: boolean;
  /** The hint given when the target is not empty and `replace` is not set (names the CLI flag). */
  fix?: string;
}

/**
 * A folder that appears complete or not at all: everything is written into a staging folder beside
 * the target, fsynced, then renamed into place. An existing target is refused unless `replace`;
 * then it is moved aside, the new one renamed in, and the old one removed, so at every moment the
 * target is either the old folder or the new one. Merging into an existing folder is never done:
 * it could not be atomic, and files of an earlier publish (a variant since dropped) would stay
 * beside a civitai.json and model card that no longer list them.
 */
export class AtomicFolder {
  private committed = false;
  private readonly pending: { done(): void };

  private constructor(
    readonly target: string,
    readonly staging: string,
    private readonly replace: boolean,
    private readonly fix: string,
  ) {
    this.pending = trackTempFolder(staging); // Ctrl-C removes it (the CLI's exit handler)
  }

  static async create(target: string, options: AtomicFolderOptions = {}): Promise<AtomicFolder> {
    const path = resolve(target);
    const fix = options.fix ?? "write into a new folder, or replace this one as a whole";
    await checkTarget(path, options.replace ?? false, fix);
    const staging = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.gyoza-partial`);
    try {
      await mkdir(staging);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
        throw new GyozaError("io", `output folder ${dirname(path)} does not exist`, {
          file: path,
          fix: "create its parent first",
          cause,
        });
      }
      throw ioError(staging, cause);
    }
    return new AtomicFolder(path, staging, options.replace ?? false, fix);
  }

  /** The staging path of a file inside the folder. */
  path(name: string): string {
    return join(this.staging, name);
  }

  /** Fsyncs every file and folder written, then renames the staging folder into place. */
  async commit(): Promise<void> {
    await fsyncTree(this.staging);
    await checkTarget(this.target, this.replace, this.fix); // a folder made meanwhile is not overwritten unasked
    const aside = `${this.staging}.previous`;
    const existing = await stat(this.target).catch(() => undefined);
    try {
      if (existing) await rename(this.target, aside);
      try {
        await rename(this.staging, this.target);
      } catch (cause) {
        if (existing) await rename(aside, this.target).catch(() => {});
        throw cause;
      }
      this.committed = true;
      this.pending.done();
      await fsyncPath(dirname(this.target));
    } catch (cause) {
      throw ioError(this.target, cause);
    }
    if (existing) await rm(aside, { recursive: true, force: true });
  }

  /** Removes the staging folder (after a failure); a committed folder is left alone. */
  async abort(): Promise<void> {
    if (this.committed) return;
    await rm(this.staging, { recursive: true, force: true });
    this.pending.done();
  }
}

async function checkTarget(path: string, replace: boolean, fix: string): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    if (code === "ENOTDIR") throw new GyozaError("usage", "exists and is not a folder", { file: path });
    throw ioError(path, cause);
  }
  if (entries.length > 0 && !replace) {
    throw new GyozaError("usage", `folder is not empty (${entries.length} entries)`, {
      file: path,
      fix,
    });
  }
}

/**
 * Copies a file (a reflink where the file system can clone, so a 2 GB checkpoint costs nothing),
 * reporting progress from the growing copy's size.
 */
export async function copyWithProgress(
  from: string,
  to: string,
  onProgress: ProgressListener = noProgress,
): Promise<number> {
  const size = (await stat(from).catch((cause: unknown) => Promise.reject(ioError(from, cause)))).size;
  const task = `copy ${basename(from)}`;
  onProgress({ type: "start", task, totalBytes: size });
  let reported = 0;
  const advanceTo = (bytes: number): void => {
    if (bytes > reported) onProgress({ type: "advance", bytes: bytes - reported });
    reported = Math.max(reported, bytes);
  };
  const timer = setInterval(() => {
    stat(to).then(
      (copied) => advanceTo(Math.min(copied.size, size)),
      () => {},
    );
  }, COPY_PROGRESS_INTERVAL_MS);
  try {
    await copyFile(from, to, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
  } catch (cause) {
    throw ioError(from, cause);
  } finally {
    clearInterval(timer);
  }
  advanceTo(size);
  onProgress({ type: "finish", task });
  return size;
}

async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(path);
    else if (entry.isFile()) await fsyncPath(path);
  }
  await fsyncPath(dir);
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r").catch((cause: unknown) => Promise.reject(ioError(path, cause)));
  try {
    await handle.sync();
  } catch (cause) {
    // Some file systems refuse fsync on a folder (EINVAL/EISDIR); the files inside were synced.
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") throw ioError(path, cause);
  } finally {
    await handle.close();
  }
}
