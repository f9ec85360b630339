import { readdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { throwIfAborted } from "../errors.js";
import { defaultHashCacheDir, type FileHashes, hashFiles } from "../hash/index.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { identifyFile } from "./identify-file.js";
import { LibraryImages, readLibraryImage } from "./library-images.js";
import { CIVITAI_API_SOURCE, type LibraryStore } from "./library-store.js";
import { readSidecars, type SidecarFact } from "./read-sidecars.js";
import { type WalkedFile, walkLibraryFiles } from "./walk-model-files.js";

/** Files per call of the shared hasher: its cache (one JSON file) is read and written once per batch, not per file. */
export const HASH_BATCH_FILES = 32;

export interface ScanOptions {
  /** The hash cache shared with `gyoza hash` (false: none). Default: `defaultHashCacheDir()`. */
  cacheDir?: string | false;
  onProgress?: ProgressListener;
  /** Stops between files: every file already written stays written. */
  signal?: AbortSignal;
}

/** What a scan did, file by file counted once. */
export interface ScanSummary {
  /** Model files found on disk under the scanned folders. */
  files: number;
  /** Size, mtime and inode unchanged: not opened, not hashed. */
  unchanged: number;
  /** Files identified and hashed in this scan (new or changed; hashes may come from the hash cache). */
  hashed: number;
  added: number;
  changed: number;
  /** Found at a new path with the sha256 of a file that vanished: the same library entry. */
  moved: number;
  /** Known files no longer on disk, now marked missing (their rows stay). */
  missing: number;
  /** Files recorded as unreadable in this scan. */
  unreadable: number;
  /** Sample images found beside or among the model files. */
  images: ImageScanSummary;
}

/** What a scan did with the images under the folders. */
export interface ImageScanSummary {
  files: number;
  unchanged: number;
  added: number;
  changed: number;
  missing: number;
  /** Read in this scan and found to carry generation data. */
  withGeneration: number;
  /** Read in this scan and found not to be an image the readers know, or damaged past reading. */
  unreadable: number;
}

/** Adds folders (or files) to the library and scans them. */
export async function addToLibrary(
  store: LibraryStore,
  paths: readonly string[],
  options: ScanOptions = {},
): Promise<ScanSummary> {
  const roots = paths.map((path) => resolve(path));
  const summary = await scanFolders(store, roots, options);
  for (const root of roots) store.addRoot(root);
  return summary;
}

/** Scans every folder added to the library again. */
export async function rescanLibrary(store: LibraryStore, options: ScanOptions = {}): Promise<ScanSummary> {
  return scanFolders(store, store.roots(), options);
}

/**
 * Walks the folders and brings the library up to date: vanished files are marked missing first (so
 * a moved file is recognised by its sha256 when met at its new path), unchanged files are only
 * noted as seen, and every new or changed file is identified, hashed and written with its sidecar
 * facts in a transaction of its own. Model files are only ever read.
 */
export async function scanFolders(
  store: LibraryStore,
  roots: readonly string[],
  options: ScanOptions = {},
): Promise<ScanSummary> {
  const { models: walked, images } = await walkLibraryFiles(roots);
  const summary: ScanSummary = {
    files: walked.length,
    unchanged: 0,
    hashed: 0,
    added: 0,
    changed: 0,
    moved: 0,
    missing: 0,
    unreadable: 0,
    images: { files: 0, unchanged: 0, added: 0, changed: 0, missing: 0, withGeneration: 0, unreadable: 0 },
  };
  const onDisk = new Set(walked.map((file) => file.path));
  const markedMissing = new Set<number>();
  // IMMEDIATE: a deferred transaction that reads and then writes fails at once with SQLITE_BUSY
  // (no busy wait) when another process committed in between; taking the write lock first waits.
  store.db
    .transaction(() => {
      for (const root of roots) {
        for (const row of store.filesUnder(resolve(root))) {
          if (row.missing === 0 && !onDisk.has(row.path)) {
            store.markMissing(row.id);
            markedMissing.add(row.id);
          }
        }
      }
    })
    .immediate();
  summary.missing = markedMissing.size;

  const toScan: WalkedFile[] = [];
  const unchanged: { id: number; file: WalkedFile }[] = [];
  for (const file of walked) {
    const row = store.fileByPath(file.path);
    if (
      row &&
      row.missing === 0 &&
      row.size === file.size &&
      row.mtime_ms === file.mtimeMs &&
      row.inode === file.inode
    )
      unchanged.push({ id: row.id, file });
    else toScan.push(file);
  }
  summary.unchanged = unchanged.length;
  store.markSeen(unchanged.map(({ id }) => id));
  await refreshSidecars(store, unchanged);

  const onProgress = options.onProgress ?? noProgress;
  const task = `library scan: ${toScan.length} file${toScan.length === 1 ? "" : "s"}`;
  if (toScan.length > 0)
    onProgress({ type: "start", task, totalBytes: toScan.reduce((sum, f) => sum + f.size, 0) });
  try {
    for (let first = 0; first < toScan.length; first += HASH_BATCH_FILES) {
      throwIfAborted(options.signal, toScan[first]!.path);
      const batch = toScan.slice(first, first + HASH_BATCH_FILES);
      let reported = 0;
      const hashed = await hashBatch(
        batch.map((file) => file.path),
        options.cacheDir ?? defaultHashCacheDir(),
        (event) => {
          // the hasher's own start/finish would restart the bar: only its bytes are passed on
          if (event.type !== "advance") return;
          reported += event.bytes;
          onProgress(event);
        },
      );
      for (const [index, file] of batch.entries()) {
        const known = store.fileByPath(file.path) !== undefined;
        const identity = await identifyFile(file.path);
        const hashes = hashed[index];
        if (typeof hashes === "string" && identity.kind !== "unreadable") {
          identity.kind = "unreadable";
          identity.unreadableReason = hashes;
        }
        const sidecars = await readSidecars(file.path);
        const written = typeof hashes === "string" ? undefined : hashes;
        const { id, moved } = store.writeScannedFile({ ...file, identity, hashes: written, sidecars });
        summary.hashed += written ? 1 : 0;
        summary.unreadable += identity.kind === "unreadable" ? 1 : 0;
        if (moved) {
          summary.moved++;
          if (markedMissing.has(id)) summary.missing--;
        } else if (known) summary.changed++;
        else summary.added++;
      }
      // files the cache knew (or that failed) report no bytes of their own
      const batchBytes = batch.reduce((sum, file) => sum + file.size, 0);
      if (batchBytes > reported) onProgress({ type: "advance", bytes: batchBytes - reported });
    }
  } finally {
    if (toScan.length > 0) onProgress({ type: "finish", task });
  }
  summary.images = await scanImages(store, roots, images, options);
  return summary;
}

/**
 * Brings the library's images under `roots` up to date, the way model files are: vanished ones
 * marked missing, unchanged ones (size, mtime, inode) only noted as seen, new or changed ones read
 * and written one transaction each. Images are only ever read.
 */
async function scanImages(
  store: LibraryStore,
  roots: readonly string[],
  walked: readonly WalkedFile[],
  options: ScanOptions,
): Promise<ImageScanSummary> {
  const images = new LibraryImages(store.db);
  const summary: ImageScanSummary = {
    files: walked.length,
    unchanged: 0,
    added: 0,
    changed: 0,
    missing: 0,
    withGeneration: 0,
    unreadable: 0,
  };
  const onDisk = new Set(walked.map((file) => file.path));
  const vanished = roots
    .flatMap((root) => images.under(resolve(root)))
    .filter((row) => row.missing === 0 && !onDisk.has(row.path))
    .map((row) => row.id);
  images.markMissing(vanished);
  summary.missing = vanished.length;
  const toRead: WalkedFile[] = [];
  const unchanged: number[] = [];
  for (const file of walked) {
    const row = images.byPath(file.path);
    if (
      row &&
      row.missing === 0 &&
      row.size === file.size &&
      row.mtime_ms === file.mtimeMs &&
      row.inode === file.inode
    )
      unchanged.push(row.id);
    else toRead.push(file);
  }
  images.markSeen(unchanged);
  summary.unchanged = unchanged.length;
  const onProgress = options.onProgress ?? noProgress;
  const task = `library scan: ${toRead.length} image${toRead.length === 1 ? "" : "s"}`;
  if (toRead.length > 0)
    onProgress({ type: "start", task, totalBytes: toRead.reduce((sum, f) => sum + f.size, 0) });
  try {
    for (const file of toRead) {
      throwIfAborted(options.signal, file.path);
      const read = await readLibraryImage(file.path);
      const { added } = images.write(file, read);
      if (added) summary.added++;
      else summary.changed++;
      if (read.generation) summary.withGeneration++;
      if (read.unreadableReason !== null) summary.unreadable++;
      onProgress({ type: "advance", bytes: file.size, item: file.path });
    }
  } finally {
    if (toRead.length > 0) onProgress({ type: "finish", task });
  }
  return summary;
}

/**
 * All six hashes of each file through the shared one-pass hasher and its cache, or why a file
 * could not be hashed. The hasher fails a whole call for one bad file, so a failed batch is hashed
 * again file by file (the good ones then come from the cache, when there is one).
 */
async function hashBatch(
  paths: readonly string[],
  cacheDir: string | false,
  onProgress: ProgressListener,
): Promise<(FileHashes | string)[]> {
  try {
    return (await hashFiles(paths, { cacheDir, onProgress })).map((result) => result.hashes);
  } catch {
    const results: (FileHashes | string)[] = [];
    for (const path of paths) {
      try {
        const [result] = await hashFiles([path], { cacheDir });
        results.push(result!.hashes);
      } catch (error) {
        results.push(`cannot hash: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return results;
  }
}

/** Sidecars come and go beside unchanged models (a Civitai Helper run): rewrite only the ones that differ. */
async function refreshSidecars(
  store: LibraryStore,
  files: readonly { id: number; file: WalkedFile }[],
): Promise<void> {
  const folders = new Map<string, Promise<ReadonlySet<string> | undefined>>();
  const namesIn = (folder: string): Promise<ReadonlySet<string> | undefined> => {
    let names = folders.get(folder);
    if (!names) {
      names = readdir(folder).then(
        (entries) => new Set(entries),
        () => undefined,
      );
      folders.set(folder, names);
    }
    return names;
  };
  for (const { id, file } of files) {
    const facts = await readSidecars(file.path, await namesIn(dirname(file.path)));
    const stored = store.sidecarFactsOf(id).filter((row) => row.source !== CIVITAI_API_SOURCE);
    if (sameFacts(stored, facts)) continue;
    store.replaceSidecarFacts(id, facts);
  }
}

function sameFacts(
  stored: readonly { source: string; sidecar_path: string; fact: string; value: string }[],
  facts: readonly SidecarFact[],
): boolean {
  if (stored.length !== facts.length) return false;
  const key = (source: string, path: string, fact: string, value: string): string =>
    JSON.stringify([source, path, fact, value]);
  const storedKeys = new Set(stored.map((row) => key(row.source, row.sidecar_path, row.fact, row.value)));
  return facts.every((fact) =>
    storedKeys.has(key(fact.source, fact.sidecarPath, fact.fact, JSON.stringify(fact.value))),
  );
}
