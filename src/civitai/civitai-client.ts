import { setTimeout as sleep } from "node:timers/promises";
import { GyozaError } from "../errors.js";
import type * as z from "../zod.js";
import { type CachedAnswer, CivitaiCache, defaultCivitaiCacheDir } from "./civitai-cache.js";
import { readLimitedText, retryAfterMs, transportReason } from "./civitai-http.js";
import {
  type CivitaiModel,
  type CivitaiModelVersion,
  civitaiModelSchema,
  civitaiModelVersionSchema,
} from "./civitai-schemas.js";

export const CIVITAI_BASE_URL = "https://civitai.com";
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Retries after the first try: 4 tries in all. */
export const DEFAULT_RETRIES = 3;
/** The first backoff; each retry doubles it (with jitter), up to `MAX_BACKOFF_MS`. */
export const DEFAULT_BACKOFF_MS = 1_000;
export const MAX_BACKOFF_MS = 30_000;
/** A `Retry-After` longer than this is not waited out: the lookup fails and says how long was asked. */
export const MAX_RETRY_AFTER_MS = 120_000;
/** Civitai's answers are a few KB (a model with many versions, some hundred KB): more is not its API. */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** Hash forms Civitai looks up: CRC32 and AutoV1 (8 hex), AutoV2 (10), AutoV3 (12), SHA256 and BLAKE3 (64). */
const HASH_PATTERN = /^[0-9a-fA-F]{8,64}$/;

export interface CivitaiClientOptions {
  /** Default `https://civitai.com`; a test points it at a local server. */
  baseUrl?: string;
  /** Per try, including reading the answer. */
  timeoutMs?: number;
  /** Tries after the first on 429, 5xx, a network error or a timeout. */
  retries?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  maxRetryAfterMs?: number;
  /** Sent as `Authorization: Bearer`; never stored or printed. */
  apiKey?: string;
  /** Where answers are cached (default `defaultCivitaiCacheDir()`), a cache, or false for none. */
  cache?: string | CivitaiCache | false;
  /** Ask Civitai even when the cache has an answer (the fresh answer replaces it). */
  refresh?: boolean;
  signal?: AbortSignal;
  /** Told before each wait, e.g. to say "rate limited, waiting 3 s". */
  onRetry?: (event: { attempt: number; reason: string; delayMs: number }) => void;
}

type Outcome =
  | { kind: "answer"; answer: CachedAnswer }
  | { kind: "retry"; reason: string; retryAfterMs: number | undefined };

/**
 * A client for Civitai's public API (`/api/v1/model-versions/by-hash/{hash}`,
 * `/api/v1/model-versions/{id}`, `/api/v1/models/{id}`) over Node's fetch: a timeout per try,
 * retries with exponential backoff and jitter on 429, 5xx and network errors (honouring
 * `Retry-After`), answers (and "not found") cached on disk, every answer checked against the
 * shape gyoza relies on. Nothing in gyoza needs it: only `gyoza civitai` and `gyoza library fetch`
 * call it.
 */
export class CivitaiClient {
  readonly baseUrl: string;
  private readonly options: CivitaiClientOptions;
  private readonly cache: CivitaiCache | undefined;
  /** HTTP requests made (cache hits make none). */
  requests = 0;

  constructor(options: CivitaiClientOptions = {}) {
    this.options = options;
    this.baseUrl = normalizeBaseUrl(options.baseUrl ?? CIVITAI_BASE_URL);
    const cache = options.cache ?? defaultCivitaiCacheDir();
    this.cache = cache === false ? undefined : typeof cache === "string" ? new CivitaiCache(cache) : cache;
  }

  /** The model version a file with this hash (any of Civitai's six forms) belongs to. */
  async modelVersionByHash(hash: string): Promise<CivitaiModelVersion> {
    return found(await this.findModelVersionByHash(hash), `model version for hash ${hash} not found`);
  }

  /** Like `modelVersionByHash`, undefined when Civitai knows no file with this hash. */
  async findModelVersionByHash(hash: string): Promise<CivitaiModelVersion | undefined> {
    if (!HASH_PATTERN.test(hash)) {
      throw new GyozaError("usage", `civitai: "${hash}" is not a hash (8 to 64 hex digits)`, {
        fix: "give a SHA256, AutoV1, AutoV2, AutoV3, BLAKE3 or CRC32 hash, or a model file",
      });
    }
    const path = `/api/v1/model-versions/by-hash/${hash.toUpperCase()}`;
    return this.getJson(path, civitaiModelVersionSchema, "a model version");
  }

  async modelVersion(id: number): Promise<CivitaiModelVersion> {
    const path = `/api/v1/model-versions/${checkId(id)}`;
    return found(
      await this.getJson(path, civitaiModelVersionSchema, "a model version"),
      `model version ${id} not found`,
    );
  }

  async model(id: number): Promise<CivitaiModel> {
    const path = `/api/v1/models/${checkId(id)}`;
    return found(await this.getJson(path, civitaiModelSchema, "a model"), `model ${id} not found`);
  }

  /** The checked body, or undefined for 404; from the cache when it holds a fresh answer. */
  private async getJson<T>(path: string, schema: z.ZodMiniType<T>, what: string): Promise<T | undefined> {
    const url = `${this.baseUrl}${path}`;
    if (this.cache && !this.options.refresh) {
      const cached = await this.cache.get(url);
      if (cached?.status === 404) return undefined;
      // A cached body that no longer fits the schema (an older gyoza wrote it) is asked again.
      if (cached && schema.safeParse(cached.body).success) return schema.parse(cached.body);
    }
    const answer = await this.request(url);
    if (answer.status === 404) {
      await this.cache?.set(url, answer);
      return undefined;
    }
    const parsed = schema.safeParse(answer.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const at = issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ` : "";
      throw new GyozaError(
        "format",
        `civitai: the answer to GET ${url} is not ${what}: ${at}${issue.message}`,
      );
    }
    await this.cache?.set(url, answer);
    return parsed.data;
  }

  /** GET with retries: the JSON body of a 200, or 404; anything else is an error. */
  private async request(url: string): Promise<CachedAnswer> {
    const retries = this.options.retries ?? DEFAULT_RETRIES;
    let reason = "";
    for (let attempt = 0; attempt <= retries; attempt++) {
      const outcome = await this.tryOnce(url);
      if (outcome.kind === "answer") return outcome.answer;
      reason = outcome.reason;
      if (attempt === retries) break;
      const maxRetryAfter = this.options.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS;
      if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs > maxRetryAfter) {
        throw new GyozaError(
          "network",
          `civitai: ${reason}, and asked to wait ${Math.ceil(outcome.retryAfterMs / 1000)} s (more than ${maxRetryAfter / 1000} s) before GET ${url}`,
          { fix: "try again later" },
        );
      }
      const delayMs = outcome.retryAfterMs ?? this.backoffMs(attempt);
      this.options.onRetry?.({ attempt: attempt + 1, reason, delayMs });
      await sleep(delayMs, undefined, { signal: this.options.signal }).catch((cause) => {
        throw new GyozaError("interrupted", "stopped by the caller's AbortSignal", { cause });
      });
    }
    const tries = retries + 1;
    const head = tries === 1 ? "civitai:" : `civitai: gave up after ${tries} tries:`;
    throw new GyozaError("network", `${head} ${reason} (GET ${url})`, {
      fix: "check the connection (or --base-url) and try again later",
    });
  }

  private async tryOnce(url: string): Promise<Outcome> {
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = this.options.signal ? AbortSignal.any([this.options.signal, timeout]) : timeout;
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let status: number;
    let statusText: string;
    let text: string;
    try {
      this.requests++;
      const response = await fetch(url, { headers, signal, redirect: "follow" });
      status = response.status;
      statusText = response.statusText;
      if (status === 429 || status >= 500) {
        await response.body?.cancel().catch(() => {});
        const retryAfter = retryAfterMs(response.headers.get("retry-after"), Date.now());
        return { kind: "retry", reason: `${status} ${statusText}`.trim(), retryAfterMs: retryAfter };
      }
      text = await readLimitedText(response, MAX_RESPONSE_BYTES, url);
    } catch (error) {
      if (error instanceof GyozaError) throw error;
      if (this.options.signal?.aborted) {
        throw new GyozaError("interrupted", "stopped by the caller's AbortSignal", { cause: error });
      }
      if (timeout.aborted)
        return { kind: "retry", reason: `no answer within ${timeoutMs} ms`, retryAfterMs: undefined };
      return { kind: "retry", reason: transportReason(error), retryAfterMs: undefined };
    }
    const detail = text.replace(/\s+/g, " ").trim().slice(0, 200);
    // Civitai says "not found" as JSON `{"error": "..."}`; any other 404 (a wrong --base-url, a
    // proxy's page) is not an answer, and must not be cached as one.
    if (status === 404 && isCivitaiError(text)) return { kind: "answer", answer: { status: 404 } };
    if (status === 404) {
      throw new GyozaError(
        "network",
        `civitai: 404 ${statusText} for GET ${url}, and not Civitai's {"error": ...}${detail ? `: ${detail}` : ""}`,
        { fix: "check --base-url: it should be the site's root, e.g. https://civitai.com" },
      );
    }
    if (status !== 200) {
      const auth = status === 401 || status === 403;
      throw new GyozaError(
        "network",
        `civitai: ${status} ${statusText} for GET ${url}${detail ? `: ${detail}` : ""}`.replace(
          / {2,}/g,
          " ",
        ),
        auth ? { fix: "set CIVITAI_API_KEY to an API key from your Civitai account settings" } : {},
      );
    }
    try {
      return { kind: "answer", answer: { status: 200, body: JSON.parse(text) as unknown } };
    } catch (error) {
      throw new GyozaError(
        "format",
        `civitai: the answer to GET ${url} is not JSON (${(error as Error).message})`,
      );
    }
  }

  private backoffMs(attempt: number): number {
    const base = this.options.backoffMs ?? DEFAULT_BACKOFF_MS;
    const cap = this.options.maxBackoffMs ?? MAX_BACKOFF_MS;
    // "Equal jitter": half the exponential delay, plus a random share of the other half, so
    // clients that failed together do not retry together.
    const exponential = Math.min(cap, base * 2 ** attempt);
    return Math.round(exponential / 2 + Math.random() * (exponential / 2));
  }
}

function isCivitaiError(text: string): boolean {
  try {
    const json: unknown = JSON.parse(text);
    return (
      typeof json === "object" && json !== null && typeof (json as { error?: unknown }).error === "string"
    );
  } catch {
    return false;
  }
}

function found<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new GyozaError("not-found", `civitai: ${message} (404)`);
  return value;
}

function checkId(id: number): number {
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new GyozaError("usage", `civitai: ${id} is not a Civitai id (a positive integer)`);
  }
  return id;
}

function normalizeBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new GyozaError("usage", `civitai: "${baseUrl}" is not a URL`, { fix: "e.g. https://civitai.com" });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new GyozaError("usage", `civitai: "${baseUrl}" is not an http(s) URL`);
  }
  return url.href.replace(/\/+$/, "");
}
