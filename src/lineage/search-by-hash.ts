import type { Dirent } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { GyozaError } from "../errors.js";
import { type FileHashes, type HashAlgorithm, hashFiles } from "../hash/index.js";
import { ioError } from "../io/byte-source.js";
import type { ProgressListener } from "../progress.js";

/** The file kinds a model folder holds (what A1111 and Civitai call checkpoints). */
export const MODEL_FILE_EXTENSIONS: readonly string[] = [".safetensors", ".ckpt", ".pt", ".pth", ".bin"];
/** Model folders are shallow; anything deeper is a mistake or a link loop. */
export const MAX_SEARCH_DEPTH = 16;
/** Each candidate is hashed (once, then cached); a folder with more model files is the wrong folder. */
export const MAX_SEARCH_FILES = 10_000;
/** Files hashed per round while looking for known files: the hasher's own file concurrency. */
const FIND_BATCH_FILES = 2;
/** The shortest hash prefix accepted as a match (AutoV2 is 10 hex digits). */
const MIN_PREFIX_LENGTH = 10;
/** What candidates are hashed with: every hash a recipe or A1111 lineage can record. */
const SEARCH_ALGORITHMS: readonly HashAlgorithm[] = ["sha256", "autov1", "autov2", "autov3"];

/** Hashes an ancestor is known by, lowercase hex (any subset). */
export interface KnownHashes {
  /** sha256 of the whole file (A1111's `sd_merge_models` keys, gyoza recipes). */
  sha256?: string;
  /** AutoV3 (sha256 of the tensor data), full or a prefix of at least 10 digits. */
  autov3?: string;
  /** AutoV2 / A1111 shorthash: the first 10 digits of the sha256. */
  autov2?: string;
  /** A1111's 8-digit legacy `model_hash` (the AutoV1 window). */
  legacyHash?: string;
}

export type MatchedBy = "sha256" | "autov3" | "autov2" | "legacy-hash";

export interface IndexedFile {
  path: string;
  size: number;
  hashes: FileHashes;
}

export interface FileMatch {
  path: string;
  matchedBy: MatchedBy;
}

/** Every model file under the folders (recursively), sorted, absolute. */
export async function listModelFiles(dirs: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_SEARCH_DEPTH) return;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (cause) {
      throw ioError(dir, cause);
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path, depth + 1);
      else if (entry.isFile() && MODEL_FILE_EXTENSIONS.includes(extname(entry.name).toLowerCase())) {
        found.add(path);
        if (found.size > MAX_SEARCH_FILES) {
          throw new GyozaError(
            "limit",
            `more than ${MAX_SEARCH_FILES} model files under ${dirs.join(", ")}`,
            {
              fix: "search narrower folders",
            },
          );
        }
      }
    }
  };
  for (const dir of dirs) await walk(resolve(dir), 0);
  return [...found].sort();
}

/** Model files found under search folders, hashed (through the hash cache), to find ancestors by hash. */
export class HashIndex {
  private constructor(readonly files: readonly IndexedFile[]) {}

  static async build(
    dirs: readonly string[],
    options: { cacheDir?: string | false; onProgress?: ProgressListener } = {},
  ): Promise<HashIndex> {
    const paths = await listModelFiles(dirs);
    const results = await hashFiles(paths, {
      algorithms: SEARCH_ALGORITHMS,
      ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    return new HashIndex(results.map(({ file, size, hashes }) => ({ path: file, size, hashes })));
  }

  static of(files: readonly IndexedFile[]): HashIndex {
    return new HashIndex(files);
  }

  /** Every indexed file carrying one of the known hashes, strongest evidence first. */
  find(known: KnownHashes, strongOnly = false): FileMatch[] {
    const matches: FileMatch[] = [];
    for (const file of this.files) {
      const matchedBy = matchFile(file.hashes, known, strongOnly);
      if (matchedBy) matches.push({ path: file.path, matchedBy });
    }
    const rank: MatchedBy[] = ["sha256", "autov3", "autov2", "legacy-hash"];
    return matches.sort((a, b) => rank.indexOf(a.matchedBy) - rank.indexOf(b.matchedBy));
  }
}

/**
 * Which recorded hash a file carries. sha256 and AutoV3 identify a file's content; AutoV2 (10
 * digits) and the legacy 8-digit hash are short enough to collide, so `strongOnly` ignores them.
 */
export function matchFile(hashes: FileHashes, known: KnownHashes, strongOnly = false): MatchedBy | undefined {
  const sha256 = hashes.sha256?.toLowerCase();
  const autov3 = hashes.autoV3Full?.toLowerCase();
  const want = (value: string | undefined) => value?.toLowerCase();
  if (sha256 && want(known.sha256) === sha256) return "sha256";
  const v3 = want(known.autov3);
  if (autov3 && v3 && v3.length >= MIN_PREFIX_LENGTH && autov3.startsWith(v3)) return "autov3";
  if (strongOnly) return undefined;
  const v2 = want(known.autov2);
  if (sha256 && v2 && v2.length >= MIN_PREFIX_LENGTH && sha256.startsWith(v2)) return "autov2";
  const legacy = want(known.legacyHash);
  if (legacy && hashes.a1111?.modelHash === legacy) return "legacy-hash";
  return undefined;
}

/** A file looked for: an id, the strong hashes it must carry, and the file name it was last known by. */
export interface WantedFile {
  id: string;
  hashes: Pick<KnownHashes, "sha256" | "autov3">;
  nameHint?: string;
}

export interface FindResult {
  found: Map<string, FileMatch>;
  /** Model files under the folders, and how many of them had to be hashed (or read from the cache). */
  candidates: number;
  hashed: number;
}

/**
 * Finds files by sha256 or AutoV3 under the folders, hashing candidates only until every wanted
 * file is found: files named as last recorded go first (moved but not renamed is the common case).
 */
export async function findByHash(
  dirs: readonly string[],
  wanted: readonly WantedFile[],
  options: { cacheDir?: string | false; onProgress?: ProgressListener } = {},
): Promise<FindResult> {
  const paths = await listModelFiles(dirs);
  const hints = new Set(wanted.flatMap((file) => (file.nameHint ? [file.nameHint.toLowerCase()] : [])));
  const hinted = (path: string) => hints.has(basename(path).toLowerCase());
  const ordered = [...paths.filter(hinted), ...paths.filter((path) => !hinted(path))];
  const found = new Map<string, FileMatch>();
  let hashed = 0;
  for (let start = 0; start < ordered.length && found.size < wanted.length; start += FIND_BATCH_FILES) {
    const batch = ordered.slice(start, start + FIND_BATCH_FILES);
    const results = await hashFiles(batch, {
      algorithms: SEARCH_ALGORITHMS,
      ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    hashed += batch.length;
    for (const result of results) {
      for (const file of wanted) {
        if (found.has(file.id)) continue;
        const matchedBy = matchFile(result.hashes, file.hashes, true);
        if (matchedBy) found.set(file.id, { path: result.file, matchedBy });
      }
    }
  }
  return { found, candidates: paths.length, hashed };
}
