import { mkdir, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeFileAtomically } from "../io/atomic-file.js";
import { ioError } from "../io/byte-source.js";
import * as z from "../zod.js";
import type { FileHashes } from "./file-hashes.js";
import { mergeFileHashes } from "./file-hashes.js";

export const HASH_CACHE_FILE = "hashes.json";
/** Oldest entries go first past this (≈0.5 KB each): the cache stays a few MB however many files pass. */
export const MAX_CACHE_ENTRIES = 20_000;
/** A cache file larger than this is not ours or is damaged: start afresh rather than parse it. */
const MAX_CACHE_FILE_BYTES = 64 * 1024 * 1024;
const CACHE_VERSION = 1;

/** `$GYOZA_CACHE_DIR`, else `~/.cache/gyoza`. */
export function defaultHashCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.GYOZA_CACHE_DIR || join(homedir(), ".cache", "gyoza");
}

const hexString = z.string().check(z.regex(/^[0-9a-fA-F]+$/));
const hex = z.optional(hexString);
const cachedHashesSchema = z.object({
  sha256: hex,
  autoV1: z.optional(z.nullable(hexString)),
  autoV2: hex,
  autoV3: hex,
  autoV3Full: hex,
  blake3: hex,
  crc32: hex,
  crc32Civitai: hex,
  a1111: z.optional(z.object({ modelHash: hex, shorthash: hex })),
});
const cacheEntrySchema = z.object({
  size: z.int().check(z.nonnegative()),
  mtimeMs: z.number(),
  hashes: cachedHashesSchema,
});
const cacheFileSchema = z.object({
  version: z.literal(CACHE_VERSION),
  entries: z.record(z.string(), z.unknown()),
});

interface CacheEntry {
  size: number;
  mtimeMs: number;
  hashes: FileHashes;
}

/**
 * Hashes of files already seen, keyed by (absolute path, size, mtimeMs): a file that changed in
 * any of these is hashed again. One JSON file, replaced atomically; entries another process wrote
 * meanwhile are kept (re-read and merged at save time), damaged entries are ignored.
 */
export class HashCache {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly changed = new Map<string, CacheEntry>();

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<HashCache> {
    const cache = new HashCache(dir);
    for (const [path, entry] of await readEntries(cache.file)) cache.entries.set(path, entry);
    return cache;
  }

  get file(): string {
    return join(this.dir, HASH_CACHE_FILE);
  }

  /** The cached hashes of `absolutePath` if its size and mtime still match. */
  get(absolutePath: string, size: number, mtimeMs: number): FileHashes | undefined {
    const entry = this.entries.get(absolutePath);
    return entry && entry.size === size && entry.mtimeMs === mtimeMs ? entry.hashes : undefined;
  }

  /** Records hashes (merged with what is cached for the same contents); `save()` writes them. */
  set(absolutePath: string, size: number, mtimeMs: number, hashes: FileHashes): void {
    const previous = this.get(absolutePath, size, mtimeMs);
    const entry = { size, mtimeMs, hashes: previous ? mergeFileHashes(previous, hashes) : hashes };
    this.entries.delete(absolutePath);
    this.entries.set(absolutePath, entry);
    this.changed.set(absolutePath, entry);
  }

  async save(): Promise<void> {
    if (this.changed.size === 0) return;
    const merged = await readEntries(this.file);
    for (const [path, entry] of this.changed) {
      merged.delete(path);
      merged.set(path, entry);
    }
    const kept = [...merged].slice(-MAX_CACHE_ENTRIES);
    const text = JSON.stringify({ version: CACHE_VERSION, entries: Object.fromEntries(kept) });
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (cause) {
      throw ioError(this.dir, cause);
    }
    await writeFileAtomically(this.file, new TextEncoder().encode(text));
    this.changed.clear();
  }
}

async function readEntries(file: string): Promise<Map<string, CacheEntry>> {
  const entries = new Map<string, CacheEntry>();
  let text: string;
  try {
    const bytes = await readFile(file);
    if (bytes.byteLength > MAX_CACHE_FILE_BYTES) return entries;
    text = bytes.toString("utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return entries;
    throw ioError(file, cause);
  }
  let parsed: z.infer<typeof cacheFileSchema>;
  try {
    parsed = cacheFileSchema.parse(JSON.parse(text));
  } catch {
    return entries;
  }
  for (const [path, value] of Object.entries(parsed.entries)) {
    const entry = cacheEntrySchema.safeParse(value);
    if (entry.success) entries.set(path, entry.data);
  }
  return entries;
}
