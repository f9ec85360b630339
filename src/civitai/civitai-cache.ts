import { createHash } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { defaultHashCacheDir } from "../hash/hash-cache.js";
import { writeFileAtomically } from "../io/atomic-file.js";
import { ioError } from "../io/byte-source.js";
import * as z from "../zod.js";

/** A found model version changes rarely (names, descriptions, new images): a week. */
export const CIVITAI_CACHE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** "Not found" may end when the author publishes or Civitai finishes hashing old files: a day. */
export const CIVITAI_NOT_FOUND_TTL_MS = 24 * 60 * 60 * 1000;
/** A cache file larger than this was not written by us (answers are a few KB): it is a miss. */
const MAX_CACHE_FILE_BYTES = 16 * 1024 * 1024;
const CACHE_VERSION = 1;

/** `$GYOZA_CACHE_DIR/civitai`, else `~/.cache/gyoza/civitai`: beside the hash cache. */
export function defaultCivitaiCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(defaultHashCacheDir(env), "civitai");
}

/** What Civitai answered for a URL: its JSON body, or that it has no such item (404). */
export type CachedAnswer = { status: 200; body: unknown } | { status: 404 };

const cacheFileSchema = z.object({
  version: z.literal(CACHE_VERSION),
  url: z.string(),
  fetchedAt: z.number(),
  status: z.union([z.literal(200), z.literal(404)]),
  body: z.optional(z.unknown()),
});

export interface CivitaiCacheOptions {
  ttlMs?: number;
  notFoundTtlMs?: number;
  /** The clock, in ms since the epoch (tests move it). */
  now?: () => number;
}

/**
 * Civitai's answers on disk, one JSON file per URL (named by the URL's SHA-256, the URL inside to
 * check), each written atomically, so concurrent gyoza processes and interrupted writes never
 * leave a half file. An entry past its TTL, damaged, or for another URL is a miss.
 */
export class CivitaiCache {
  private readonly ttlMs: number;
  private readonly notFoundTtlMs: number;
  private readonly now: () => number;

  constructor(
    readonly dir: string,
    options: CivitaiCacheOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? CIVITAI_CACHE_TTL_MS;
    this.notFoundTtlMs = options.notFoundTtlMs ?? CIVITAI_NOT_FOUND_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  fileFor(url: string): string {
    return join(this.dir, `${createHash("sha256").update(url).digest("hex").slice(0, 40)}.json`);
  }

  async get(url: string): Promise<CachedAnswer | undefined> {
    const file = this.fileFor(url);
    let text: string;
    try {
      if ((await stat(file)).size > MAX_CACHE_FILE_BYTES) return undefined;
      text = await readFile(file, "utf8");
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw ioError(file, cause);
    }
    let entry: z.infer<typeof cacheFileSchema>;
    try {
      entry = cacheFileSchema.parse(JSON.parse(text));
    } catch {
      return undefined;
    }
    if (entry.url !== url) return undefined;
    const age = this.now() - entry.fetchedAt;
    const ttl = entry.status === 200 ? this.ttlMs : this.notFoundTtlMs;
    if (!(age >= 0 && age <= ttl)) return undefined;
    if (entry.status === 404) return { status: 404 };
    return entry.body === undefined ? undefined : { status: 200, body: entry.body };
  }

  async set(url: string, answer: CachedAnswer): Promise<void> {
    const entry = { version: CACHE_VERSION, url, fetchedAt: this.now(), ...answer };
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (cause) {
      throw ioError(this.dir, cause);
    }
    await writeFileAtomically(this.fileFor(url), new TextEncoder().encode(JSON.stringify(entry)));
  }
}
