/**
 * File hashes as Civitai and the web UIs compute them (DOMAIN.md §5): SHA256, AutoV1, AutoV2,
 * AutoV3, BLAKE3 and CRC32 in one front-to-back pass, spread over worker threads for big files,
 * with a cache keyed by (absolute path, size, mtime). See `FileHashes` for the result's shape.
 */
export {
  AUTOV1_MIN_FILE_BYTES,
  AUTOV1_WINDOW_BYTES,
  AUTOV1_WINDOW_OFFSET,
  AUTOV3_MAX_HEADER_BYTES,
  autoV3Start,
  type FileHashes,
  HASH_ALGORITHMS,
  type HashAlgorithm,
  parseHashAlgorithms,
} from "./file-hashes.js";
export { defaultHashCacheDir, HASH_CACHE_FILE, HashCache } from "./hash-cache.js";
export {
  cachedFileHashes,
  type FileHashResult,
  type HashFileOptions,
  type HashOptions,
  hashBytes,
  hashFile,
  hashFiles,
  hashSource,
} from "./hash-file.js";
export { blake3Implementation } from "./lane-dependencies.js";
