/**
 * The model library (issue #21): every local model file with its identity, hashes and what other
 * tools' sidecars say about it, in one SQLite database per library.
 */
export { FILE_KINDS, type FileIdentity, type FileKind, identifyFile } from "./identify-file.js";
export {
  type FileRow,
  type FileVersionRow,
  type HashRow,
  LibraryStore,
  type ScannedFile,
} from "./library-store.js";
export { MIGRATIONS, type Migration } from "./migrations.js";
export {
  BUSY_TIMEOUT_MS,
  defaultLibraryPath,
  type LibraryDatabase,
  openLibrary,
  schemaVersion,
} from "./open-library.js";
export {
  type CivitaiHashes,
  type FindQuery,
  findEntries,
  type LibraryEntry,
  listEntries,
  MIN_HASH_PREFIX_LENGTH,
  showEntry,
} from "./query-library.js";
export { MAX_SIDECAR_BYTES, readSidecars, type SidecarFact, type SidecarSource } from "./read-sidecars.js";
export {
  addToLibrary,
  HASH_BATCH_FILES,
  rescanLibrary,
  type ScanOptions,
  type ScanSummary,
  scanFolders,
} from "./scan-library.js";
export { MAX_WALK_DEPTH, MAX_WALK_FILES, type WalkedFile, walkModelFiles } from "./walk-model-files.js";
