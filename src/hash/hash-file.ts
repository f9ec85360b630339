import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename, resolve } from "node:path";
import { GyozaError } from "../errors.js";
import { BufferByteSource, type ByteSource, FileByteSource, ioError } from "../io/byte-source.js";
import { noProgress, type ProgressListener } from "../progress.js";
import {
  AUTOV1_WINDOW_BYTES,
  AUTOV1_WINDOW_OFFSET,
  AUTOV3_LENGTH_PREFIX_BYTES,
  autoV3Start,
  type FileHashes,
  formatFileHashes,
  HASH_ALGORITHMS,
  type HashAlgorithm,
  hasAlgorithms,
  pickAlgorithms,
  type RawDigests,
  streamsFor,
} from "./file-hashes.js";
import { defaultHashCacheDir, HashCache } from "./hash-cache.js";
import { runHashPass } from "./hash-pass.js";

/** Below this, starting worker threads costs more than it saves (≈50 ms against ≈40 ms of hashing). */
export const IN_THREAD_MAX_BYTES = 64 * 1024 * 1024;
/** Jobs smaller than this finish in about a second or less here, so they report no progress. */
export const PROGRESS_MIN_BYTES = 512 * 1024 * 1024;
/** Files hashed at once: two keep both cores and the disk busy; more only fight over them. */
export const DEFAULT_FILE_CONCURRENCY = 2;

export interface HashOptions {
  /** Which hashes to compute; all by default. */
  algorithms?: readonly HashAlgorithm[];
  /** Worker threads for one file; by default none for small files, else one per core (capped by streams). */
  threads?: number;
  /**
   * At most this many worker threads for one file when `threads` is not given. A merge hashing its
   * inputs alongside sets 1: its own threads already keep the cores busy, and each worker holds a
   * JavaScript heap of its own (≈14 MB), which counts against the merge's memory bound.
   */
  maxThreads?: number;
  onProgress?: ProgressListener;
}

export interface HashFileOptions extends HashOptions {
  /** Directory of the hash cache (`hashes.json`), or false for none. Default: `defaultHashCacheDir()`. */
  cacheDir?: string | false;
  /** Hash again even when the cache has an entry, and store the fresh result. */
  refresh?: boolean;
  /** Files hashed at once by `hashFiles`. */
  concurrency?: number;
}

export interface FileHashResult {
  /** The path as given. */
  file: string;
  size: number;
  hashes: FileHashes;
  /** Whether the hashes came from the cache. */
  fromCache: boolean;
}

/** All hashes of a file (or those in `options.algorithms`) in one pass over it. */
export async function hashFile(path: string, options: HashFileOptions = {}): Promise<FileHashes> {
  const [result] = await hashFiles([path], options);
  return result!.hashes;
}

/** All hashes of in-memory bytes, on the calling thread (tests, small buffers). */
export async function hashBytes(bytes: Uint8Array, options: HashOptions = {}): Promise<FileHashes> {
  return hashSource(new BufferByteSource(bytes), { threads: 0, ...options });
}

/** Hashes any byte source in one front-to-back pass; the AutoV1 window and AutoV3 prefix are read first. */
export async function hashSource(source: ByteSource, options: HashOptions = {}): Promise<FileHashes> {
  const progress = progressReporter(source.size, basename(source.name), options.onProgress);
  const hashes = await hashInOnePass(source, options.algorithms ?? HASH_ALGORITHMS, options, (bytes) =>
    progress.advance(bytes),
  );
  progress.finish();
  return hashes;
}

/**
 * Hashes several files, a few at a time, using and updating the cache. Results come in the order
 * of `paths`. A missing path fails the call before anything is hashed; a file that fails while
 * being hashed lets the others finish (and be cached) before the first error is thrown.
 */
export async function hashFiles(
  paths: readonly string[],
  options: HashFileOptions = {},
): Promise<FileHashResult[]> {
  const algorithms = options.algorithms ?? HASH_ALGORITHMS;
  const cache = await openCache(options.cacheDir);
  const files = await Promise.all(paths.map((path) => statFile(path)));
  const cachedHashes = files.map((file) =>
    options.refresh ? undefined : fromCache(cache, file, algorithms),
  );
  const toHash = files.filter((_, index) => cachedHashes[index] === undefined);
  const progress = progressReporter(
    toHash.reduce((sum, file) => sum + file.size, 0),
    toHash.length === 1 ? basename(toHash[0]!.path) : `${toHash.length} files`,
    options.onProgress,
  );
  const results = new Array<FileHashResult>(files.length);
  const errors = new Array<unknown>(files.length);
  const hashOne = async (index: number): Promise<void> => {
    const file = files[index]!;
    const cached = cachedHashes[index];
    if (cached) {
      results[index] = { file: file.path, size: file.size, hashes: cached, fromCache: true };
      return;
    }
    const source = await FileByteSource.open(file.path);
    let hashes: FileHashes;
    try {
      hashes = await hashInOnePass(source, algorithms, options, (bytes) =>
        progress.advance(bytes, file.path),
      );
    } finally {
      await source.close();
    }
    // A file written to while it was hashed gets no cache entry (its hashes may mix two versions).
    const after = await statFile(file.path);
    if (cache && after.size === file.size && after.mtimeMs === file.mtimeMs) {
      cache.set(file.absolutePath, file.size, file.mtimeMs, hashes);
    }
    results[index] = { file: file.path, size: file.size, hashes, fromCache: false };
  };
  await runBounded(files.length, options.concurrency ?? DEFAULT_FILE_CONCURRENCY, (index) =>
    hashOne(index).catch((error: unknown) => {
      errors[index] = error ?? new Error("unknown failure");
    }),
  );
  progress.finish();
  await cache?.save();
  const firstError = errors.find((error) => error !== undefined);
  if (firstError !== undefined) throw firstError;
  return results;
}

/**
 * The hashes of each of `paths` (those in `options.algorithms`, all by default) as the cache holds them
 * for the file as it is now, else undefined; reads nothing of the files. Tells a merge whether
 * `hashFile` would read an input alongside it.
 */
export async function cachedFileHashes(
  paths: readonly string[],
  options: Pick<HashFileOptions, "algorithms" | "cacheDir"> = {},
): Promise<(FileHashes | undefined)[]> {
  const cache = await openCache(options.cacheDir);
  const files = await Promise.all(paths.map((path) => statFile(path)));
  return files.map((file) => fromCache(cache, file, options.algorithms ?? HASH_ALGORITHMS));
}

async function openCache(cacheDir: string | false | undefined): Promise<HashCache | undefined> {
  const dir = cacheDir === undefined ? defaultHashCacheDir() : cacheDir;
  return dir === false ? undefined : HashCache.open(dir);
}

function fromCache(
  cache: HashCache | undefined,
  file: { absolutePath: string; size: number; mtimeMs: number },
  algorithms: readonly HashAlgorithm[],
): FileHashes | undefined {
  const cached = cache?.get(file.absolutePath, file.size, file.mtimeMs);
  return cached && hasAlgorithms(cached, algorithms) ? pickAlgorithms(cached, algorithms) : undefined;
}

async function hashInOnePass(
  source: ByteSource,
  algorithms: readonly HashAlgorithm[],
  threads: ThreadsOption,
  onBytes: (bytes: number) => void,
): Promise<FileHashes> {
  const streams = streamsFor(algorithms);
  const raw: RawDigests = {};
  if (algorithms.includes("autov1")) {
    // A1111 hashes whatever the window holds, even nothing; Civitai's null is decided in formatting.
    const start = Math.min(AUTOV1_WINDOW_OFFSET, source.size);
    const length = Math.min(AUTOV1_WINDOW_BYTES, source.size - start);
    raw.autov1Window = createHash("sha256")
      .update(await source.read(start, length))
      .digest("hex");
  }
  const prefix = await source.read(0, Math.min(AUTOV3_LENGTH_PREFIX_BYTES, source.size));
  const digests = await runHashPass(source, {
    streams,
    autoV3Start: autoV3Start(prefix, source.size),
    threads: hashThreadCount(source.size, streams.length, threads),
    path: source instanceof FileByteSource ? source.name : undefined,
    onBytes,
  });
  return formatFileHashes({ ...raw, ...digests }, source.size, algorithms);
}

type ThreadsOption = Pick<HashOptions, "threads" | "maxThreads">;

/**
 * Worker threads for hashing one file of `size` bytes into `streamCount` streams: `threads` when
 * given; else none for a small file, one per core (at most one per stream, and at most `maxThreads`).
 */
export function hashThreadCount(size: number, streamCount: number, options: ThreadsOption = {}): number {
  if (options.threads !== undefined) return options.threads;
  if (size < IN_THREAD_MAX_BYTES) return 0;
  return Math.min(availableParallelism(), streamCount, options.maxThreads ?? Number.POSITIVE_INFINITY);
}

interface StatedFile {
  path: string;
  absolutePath: string;
  size: number;
  mtimeMs: number;
}

async function statFile(path: string): Promise<StatedFile> {
  let stats: Awaited<ReturnType<typeof stat>>;
  try {
    stats = await stat(path);
  } catch (cause) {
    throw ioError(path, cause);
  }
  if (!stats.isFile()) throw new GyozaError("io", "not a regular file", { file: path });
  return { path, absolutePath: resolve(path), size: stats.size, mtimeMs: stats.mtimeMs };
}

/** Progress events for jobs big enough to take a second or more; nothing for the rest. */
function progressReporter(totalBytes: number, task: string, listener: ProgressListener = noProgress) {
  const active = totalBytes >= PROGRESS_MIN_BYTES && listener !== noProgress;
  if (active) listener({ type: "start", task: `hashing ${task}`, totalBytes });
  return {
    advance(bytes: number, item?: string) {
      if (active)
        listener(item === undefined ? { type: "advance", bytes } : { type: "advance", bytes, item });
    },
    finish() {
      if (active) listener({ type: "finish", task: `hashing ${task}` });
    },
  };
}

/** Runs `task(0..count-1)` with at most `limit` running at once. */
async function runBounded(
  count: number,
  limit: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const runner = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, runner));
}
