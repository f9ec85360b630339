import { randomBytes } from "node:crypto";
import { link, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, extname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { GenerationBackend } from "../backends/types.js";
import { runRecipe } from "../engine/run-recipe.js";
import { mergeDate } from "../engine/source-date.js";
import { GyozaError, throwIfAborted } from "../errors.js";
import { hashFile } from "../hash/index.js";
import { writeFileAtomically } from "../io/atomic-file.js";
import { copyWithProgress } from "../io/atomic-folder.js";
import { ioError } from "../io/byte-source.js";
import { noProgress, type ProgressListener } from "../progress.js";
import type { Recipe } from "../recipe/index.js";
import { withFileLock } from "./folder-lock.js";
import { computeRecipeKey } from "./recipe-key.js";

/**
 * Getting a candidate to the backend: a recipe is merged straight into the backend's model folder,
 * a ready model file is hard-linked (or copied) there, each named `gyoza-<AutoV3 12 hex>.<ext>` and
 * recorded in `.gyoza-candidates.json` in that folder, so a repeated candidate is never merged twice.
 */
export const CANDIDATE_INDEX_FILE = ".gyoza-candidates.json";
/** The lock held while the index is read, a candidate placed and the index written (see folder-lock.ts). */
export const CANDIDATE_LOCK_FILE = ".gyoza-candidates.lock";
/** Largest index file read (the index is untrusted bytes like any other file). */
const MAX_INDEX_BYTES = 8 * 1024 * 1024;
/** The only names gyoza creates (and so the only names cleanup ever removes). */
const CANDIDATE_NAME = /^gyoza-[0-9a-f]{12}\.(safetensors|ckpt|pt|pth|bin)$/;
/** A merge in progress, renamed to its AutoV3 name when complete. */
const MERGING_PREFIX = "gyoza-merging-";

export interface CandidateEntry {
  /** The recipe key, or `file:<sha256>` for a staged model file. */
  key: string;
  /** File name inside the model folder. */
  file: string;
  size: number;
  sha256: string;
  autov3: string;
  how: "merge" | "link" | "copy";
  created: string;
  lastUsed: string;
}

interface CandidateIndex {
  gyoza_candidates: 1;
  entries: CandidateEntry[];
}

export interface StageCandidateOptions {
  /** A recipe to merge (relative input paths resolve from `recipeBaseDir`). */
  recipe?: Recipe;
  recipeBaseDir?: string;
  /** Or a ready model file. */
  modelFile?: string;
  backend: GenerationBackend;
  /** The hash cache (default `defaultHashCacheDir()`), or false. */
  hashCacheDir?: string | false;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** How often to refresh and ask the backend for its list (default 6), and the first wait between (default 100 ms, doubling up to 1 s). */
  listAttempts?: number;
  listDelayMs?: number;
  /** Lines for the user: waiting for another process staging into the folder, a stale lock taken over. */
  onLog?: (line: string) => void;
}

export interface StagedCandidate {
  /** The name the backend lists it by (what a generate request names). */
  checkpointName: string;
  /** Its path in the model folder. */
  file: string;
  /** First 10 hex of the file's sha256 (A1111's `Model hash`). */
  autov2: string;
  /** sha256 of the safetensors data section (full, lowercase hex). */
  autov3: string;
  sha256: string;
  /** The gyoza recipe key, for a recipe. */
  recipeKey?: string;
  /** True when the candidate was already in the folder (nothing merged or copied). */
  reused: boolean;
}

/** Puts a candidate where the backend reads models and waits until the backend lists it. */
export async function stageCandidate(options: StageCandidateOptions): Promise<StagedCandidate> {
  const { backend } = options;
  const folder = resolve(backend.config.modelFolder);
  await checkFolder(folder);
  const onProgress = options.onProgress ?? noProgress;
  const hashCacheDir = options.hashCacheDir;
  const cache = hashCacheDir !== undefined ? { cacheDir: hashCacheDir } : {};
  throwIfAborted(options.signal);

  let key: string;
  let recipeKey: string | undefined;
  if (options.recipe) {
    const computed = await computeRecipeKey(options.recipe, {
      ...(options.recipeBaseDir !== undefined ? { baseDir: options.recipeBaseDir } : {}),
      ...cache,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    key = recipeKey = computed.key;
  } else if (options.modelFile) {
    const hashes = await hashFile(options.modelFile, { algorithms: ["sha256"], ...cache });
    key = `file:${hashes.sha256!.toLowerCase()}`;
  } else {
    throw new GyozaError("usage", "stageCandidate needs a recipe or a model file");
  }

  // read-modify-write of the index, and the merge itself, under the folder's lock: a second
  // process staging the same candidate waits, then finds it in the index and reuses it
  const lockOptions = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onLog ? { onLog: options.onLog } : {}),
  };
  const placed = await withFileLock(
    join(folder, CANDIDATE_LOCK_FILE),
    async (): Promise<{ entry: CandidateEntry; reused: boolean } | { userFile: string }> => {
      const index = await readCandidateIndex(folder);
      const known = index.entries.find((entry) => entry.key === key);
      let entry: CandidateEntry | undefined;
      if (known && (await fileMatches(join(folder, known.file), known.size))) {
        entry = { ...known, lastUsed: new Date().toISOString() };
      }
      const reused = entry !== undefined;
      if (!entry && options.recipe) {
        entry = await mergeInto(folder, options.recipe, key, options, onProgress);
      } else if (!entry) {
        const modelFile = resolve(options.modelFile!);
        // the backend already reads it: use it where it is (a user's file, never recorded for cleanup)
        if (isInside(folder, modelFile)) return { userFile: modelFile };
        entry = await placeModelFile(folder, modelFile, key, cache, onProgress);
      }
      await writeCandidateIndex(folder, {
        gyoza_candidates: 1,
        entries: [...index.entries.filter((other) => other.key !== key), entry],
      });
      return { entry, reused };
    },
    lockOptions,
  );
  if ("userFile" in placed) {
    const hashes = await hashFile(placed.userFile, { algorithms: ["sha256", "autov3"], ...cache });
    return await waitUntilListed(options, folder, placed.userFile, {
      autov2: hashes.sha256!.slice(0, 10).toLowerCase(),
      autov3: (hashes.autoV3Full ?? "").toLowerCase(),
      sha256: hashes.sha256!.toLowerCase(),
      reused: true,
    });
  }
  const { entry, reused } = placed;
  return await waitUntilListed(options, folder, join(folder, entry.file), {
    autov2: entry.sha256.slice(0, 10),
    autov3: entry.autov3,
    sha256: entry.sha256,
    ...(recipeKey ? { recipeKey } : {}),
    reused,
  });
}

async function mergeInto(
  folder: string,
  recipe: Recipe,
  key: string,
  options: StageCandidateOptions,
  onProgress: ProgressListener,
): Promise<CandidateEntry> {
  const merging = join(folder, `${MERGING_PREFIX}${randomBytes(6).toString("hex")}.safetensors`);
  const baseDir = options.recipeBaseDir ?? process.cwd();
  // relative input paths stay relative to the recipe's folder; the output goes into the model folder
  const inputs = Object.fromEntries(
    Object.entries(recipe.inputs).map(([name, input]) => [
      name,
      { ...input, path: isAbsolute(input.path) ? input.path : resolve(baseDir, input.path) },
    ]),
  );
  const vae =
    recipe.output.vae.file && !isAbsolute(recipe.output.vae.file)
      ? { ...recipe.output.vae, file: resolve(baseDir, recipe.output.vae.file) }
      : recipe.output.vae;
  // the title a plain `gyoza merge` of this recipe gives (not the temp file's name), the recipe
  // recorded as written and a fixed date: re-merging a candidate gives the same bytes, so the same
  // AutoV2 in every sample's `Model hash`
  const title = recipe.output.title ?? basename(recipe.output.path).replace(/\.[^.]+$/, "");
  const placed: Recipe = { ...recipe, inputs, output: { ...recipe.output, path: merging, vae, title } };
  try {
    await runRecipe(placed, {
      baseDir,
      recordedRecipe: recipe,
      date: candidateDate(),
      onProgress,
      ...(options.hashCacheDir !== undefined ? { hashCacheDir: options.hashCacheDir } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (cause) {
    await unlink(merging).catch(() => {});
    throw explainFull(cause, folder);
  }
  try {
    const hashes = await hashFile(merging, { algorithms: ["sha256", "autov3"], cacheDir: false });
    const autov3 = hashes.autoV3Full!.toLowerCase();
    const file = `gyoza-${autov3.slice(0, 12)}.safetensors`;
    await rename(merging, join(folder, file)).catch((cause: unknown) =>
      Promise.reject(ioError(join(folder, file), cause)),
    );
    const size = (await stat(join(folder, file))).size;
    const now = new Date().toISOString();
    return {
      key,
      file,
      size,
      sha256: hashes.sha256!.toLowerCase(),
      autov3,
      how: "merge",
      created: now,
      lastUsed: now,
    };
  } catch (cause) {
    await unlink(merging).catch(() => {});
    throw cause;
  }
}

/**
 * A candidate's `modelspec.date`: `SOURCE_DATE_EPOCH` when set, else 1970-01-01T00:00:00Z. A
 * candidate is a preview; a time-of-merge date would make each re-merge of one recipe a different
 * file. The merge a user keeps (`gyoza merge`) records its real time.
 */
function candidateDate(): Date {
  return process.env.SOURCE_DATE_EPOCH ? mergeDate() : new Date(0);
}

async function placeModelFile(
  folder: string,
  modelFile: string,
  key: string,
  cache: { cacheDir?: string | false },
  onProgress: ProgressListener,
): Promise<CandidateEntry> {
  const hashes = await hashFile(modelFile, { algorithms: ["sha256", "autov3"], ...cache });
  const autov3 = hashes.autoV3Full?.toLowerCase();
  if (!autov3) {
    throw new GyozaError("format", "gyoza samples safetensors checkpoints only (no AutoV3 for this file)", {
      file: modelFile,
      fix: "convert it first: gyoza convert MODEL.ckpt",
    });
  }
  const ext = extname(modelFile).toLowerCase() || ".safetensors";
  const file = `gyoza-${autov3.slice(0, 12)}${ext}`;
  const target = join(folder, file);
  const size = (await stat(modelFile)).size;
  let how: "link" | "copy" = "link";
  if (!(await fileMatches(target, size))) {
    await unlink(target).catch(() => {});
    try {
      await link(modelFile, target);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code !== "EXDEV" && code !== "EPERM" && code !== "ENOTSUP") throw ioError(target, cause);
      how = "copy";
      const temp = join(folder, `.${file}.${randomBytes(4).toString("hex")}.gyoza-partial`);
      try {
        await copyWithProgress(modelFile, temp, onProgress);
        await rename(temp, target);
      } catch (copyCause) {
        await unlink(temp).catch(() => {});
        throw explainFull(copyCause instanceof GyozaError ? copyCause : ioError(target, copyCause), folder);
      }
    }
  }
  const now = new Date().toISOString();
  return { key, file, size, sha256: hashes.sha256!.toLowerCase(), autov3, how, created: now, lastUsed: now };
}

async function waitUntilListed(
  options: StageCandidateOptions,
  folder: string,
  path: string,
  facts: Omit<StagedCandidate, "checkpointName" | "file">,
): Promise<StagedCandidate> {
  const { backend } = options;
  const name = backend.checkpointName(relative(folder, path).split(sep).join("/"));
  const attempts = Math.max(1, options.listAttempts ?? 6);
  const delay = options.listDelayMs ?? 100;
  const signal = options.signal ? { signal: options.signal } : {};
  for (let attempt = 0; attempt < attempts; attempt++) {
    throwIfAborted(options.signal);
    await backend.refreshModels(signal);
    const listed = await backend.listCheckpoints(signal);
    if (listed.includes(name)) return { checkpointName: name, file: path, ...facts };
    // a backend may take a moment to see a new file (a network share, A1111's refresh): back off, up to a second
    if (attempt < attempts - 1)
      await new Promise((done) => setTimeout(done, Math.min(1000, delay * 2 ** attempt)));
  }
  throw new GyozaError(
    "usage",
    `backend "${backend.config.name}" does not list ${name} after ${attempts} refreshes: it does not read models from ${folder}`,
    {
      file: path,
      fix: `set model_folder of "${backend.config.name}" in gyoza.yaml to a folder the backend loads checkpoints from (its checkpoints folder, or one added in ComfyUI's extra_model_paths.yaml) and model_prefix to where it sits in the backend's list; gyoza backend check tells`,
    },
  );
}

function explainFull(cause: unknown, folder: string): unknown {
  if (cause instanceof GyozaError && /no space left/.test(cause.message)) {
    return new GyozaError("io", `no space left in ${folder} for this candidate (nothing partial was kept)`, {
      ...(cause.file ? { file: cause.file } : {}),
      fix: "free space there, or run gyoza sample --keep off to remove earlier candidates; finished candidates and images are kept",
      cause,
    });
  }
  return cause;
}

async function checkFolder(folder: string): Promise<void> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(folder);
  } catch (cause) {
    throw new GyozaError("io", `the backend's model folder ${folder} does not exist`, {
      file: folder,
      fix: "create it, or correct model_folder in gyoza.yaml",
      cause,
    });
  }
  if (!info.isDirectory())
    throw new GyozaError("io", `model_folder ${folder} is not a folder`, { file: folder });
}

function isInside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

async function fileMatches(path: string, size: number): Promise<boolean> {
  try {
    const info = await stat(path);
    return info.isFile() && info.size === size;
  } catch {
    return false;
  }
}

/** The index of the candidates gyoza placed in `folder`; entries that do not check out are dropped. */
export async function readCandidateIndex(folder: string): Promise<CandidateIndex> {
  const empty: CandidateIndex = { gyoza_candidates: 1, entries: [] };
  let bytes: Buffer;
  try {
    const path = join(folder, CANDIDATE_INDEX_FILE);
    if ((await stat(path)).size > MAX_INDEX_BYTES) return empty;
    bytes = await readFile(path);
  } catch {
    return empty;
  }
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString("utf8"));
  } catch {
    return empty;
  }
  if (!data || typeof data !== "object" || !Array.isArray((data as CandidateIndex).entries)) return empty;
  const entries = (data as CandidateIndex).entries.filter(isValidEntry);
  return { gyoza_candidates: 1, entries };
}

function isValidEntry(value: unknown): value is CandidateEntry {
  if (!value || typeof value !== "object") return false;
  const entry = value as Record<string, unknown>;
  const hex = (text: unknown, length: number) =>
    typeof text === "string" && new RegExp(`^[0-9a-f]{${length}}$`).test(text);
  return (
    typeof entry.key === "string" &&
    entry.key.length <= 200 &&
    typeof entry.file === "string" &&
    CANDIDATE_NAME.test(entry.file) &&
    typeof entry.size === "number" &&
    Number.isSafeInteger(entry.size) &&
    entry.size >= 0 &&
    hex(entry.sha256, 64) &&
    hex(entry.autov3, 64) &&
    (entry.how === "merge" || entry.how === "link" || entry.how === "copy") &&
    typeof entry.created === "string" &&
    typeof entry.lastUsed === "string"
  );
}

async function writeCandidateIndex(folder: string, index: CandidateIndex): Promise<void> {
  await writeFileAtomically(
    join(folder, CANDIDATE_INDEX_FILE),
    Buffer.from(`${JSON.stringify(index, null, 1)}\n`),
  );
}

export interface CleanupOptions {
  /** The backend's model folder. */
  folder: string;
  /** File names or AutoV3s (full or 12 hex) never removed. */
  keep?: readonly string[];
  /** Keep at most this many candidates (most recently used first); without caps, every candidate not kept goes. */
  maxCount?: number;
  /** Keep at most this many bytes of candidates. */
  maxBytes?: number;
  /** Only these candidates (file names) may go; every other entry stays (a run removing what it placed). */
  only?: readonly string[];
}

/**
 * Removes candidates gyoza placed (files named `gyoza-<AutoV3>` recorded in the index; never any
 * other file) and merges left half-done by an interrupted run, beyond the caps or all but `keep`.
 */
export async function cleanupCandidates(
  options: CleanupOptions,
): Promise<{ removed: string[]; kept: string[]; keptBytes: number }> {
  const folder = resolve(options.folder);
  return await withFileLock(join(folder, CANDIDATE_LOCK_FILE), () => cleanupLocked(folder, options));
}

async function cleanupLocked(
  folder: string,
  options: CleanupOptions,
): Promise<{ removed: string[]; kept: string[]; keptBytes: number }> {
  const index = await readCandidateIndex(folder);
  const keep = new Set(options.keep ?? []);
  const only = options.only ? new Set(options.only) : undefined;
  const isKept = (entry: CandidateEntry) =>
    keep.has(entry.file) ||
    keep.has(entry.autov3) ||
    keep.has(entry.autov3.slice(0, 12)) ||
    (only !== undefined && !only.has(entry.file));
  const capped = options.maxCount !== undefined || options.maxBytes !== undefined;
  const byRecency = [...index.entries].sort((a, b) =>
    a.lastUsed < b.lastUsed ? 1 : a.lastUsed > b.lastUsed ? -1 : 0,
  );
  const kept: CandidateEntry[] = [];
  const removed: string[] = [];
  let keptBytes = 0;
  // several recipe keys may name one file (two recipes that merge to the same tensors): it stays while any is kept
  const keptFiles = new Set<string>();
  const dropped: CandidateEntry[] = [];
  for (const entry of byRecency) {
    const counted = keptFiles.has(entry.file);
    const fits =
      capped &&
      (counted ||
        (keptFiles.size < (options.maxCount ?? Number.POSITIVE_INFINITY) &&
          keptBytes + entry.size <= (options.maxBytes ?? Number.POSITIVE_INFINITY)));
    if (isKept(entry) || fits) {
      kept.push(entry);
      if (!counted) keptBytes += entry.size;
      keptFiles.add(entry.file);
    } else dropped.push(entry);
  }
  for (const entry of dropped) {
    if (keptFiles.has(entry.file) || removed.includes(entry.file)) continue;
    await unlink(join(folder, entry.file)).catch(() => {});
    removed.push(entry.file);
  }
  // merges an interrupted run left (the engine removes its own temp files; this is the step after)
  for (const name of only ? [] : await readdir(folder).catch(() => [] as string[])) {
    if (name.startsWith(MERGING_PREFIX) && name.endsWith(".safetensors")) {
      await unlink(join(folder, name)).catch(() => {});
      removed.push(name);
    }
  }
  await writeCandidateIndex(folder, { gyoza_candidates: 1, entries: kept });
  return { removed, kept: [...keptFiles], keptBytes };
}

/** `gyoza-<AutoV3 12 hex>.safetensors`, the name a candidate gets. */
export function candidateFileName(autov3: string, ext = ".safetensors"): string {
  return `gyoza-${autov3.slice(0, 12).toLowerCase()}${ext}`;
}
