/**
 * Civitai interop (issue #21): a client for Civitai's public API with retries and an on-disk
 * cache, and the library's `fetch` that stores its answers as facts. Optional by design: nothing
 * else in gyoza imports this, and nothing here touches the network until a method is called.
 */
export {
  type CachedAnswer,
  CIVITAI_CACHE_TTL_MS,
  CIVITAI_NOT_FOUND_TTL_MS,
  CivitaiCache,
  type CivitaiCacheOptions,
  defaultCivitaiCacheDir,
} from "./civitai-cache.js";
export {
  CIVITAI_BASE_URL,
  CivitaiClient,
  type CivitaiClientOptions,
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_MS,
  MAX_RESPONSE_BYTES,
  MAX_RETRY_AFTER_MS,
} from "./civitai-client.js";
export {
  type CivitaiFile,
  type CivitaiImage,
  type CivitaiModel,
  type CivitaiModelVersion,
  civitaiModelSchema,
  civitaiModelVersionSchema,
} from "./civitai-schemas.js";
export {
  CIVITAI_API_SOURCE,
  type FetchOptions,
  type FetchSummary,
  fetchCivitaiFacts,
} from "./fetch-library-facts.js";
