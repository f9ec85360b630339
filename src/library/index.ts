/**
 * The model library (issue #21): every local model file with its identity, hashes and what other
 * tools' sidecars say about it, in one SQLite database per library.
 */
export {
  type FileProvenance,
  MAX_PROVENANCE_TEXT,
  type RecipeFormat,
  type RecordedParent,
  readFileProvenance,
} from "./file-provenance.js";
export { FILE_KINDS, type FileIdentity, type FileKind, identifyFile } from "./identify-file.js";
export {
  type ImageResource,
  type ImageResourceKind,
  type ImageResourceRow,
  type ImageRow,
  imageResources,
  LibraryImages,
  type ReadImage,
  readLibraryImage,
} from "./library-images.js";
export {
  type FileRow,
  type FileVersionRow,
  type HashRow,
  LibraryStore,
  type ScannedFile,
} from "./library-store.js";
export {
  childrenOf,
  fileIdOf,
  fileIdsOfVersion,
  groupFiles,
  listModels,
  type ModelRow,
  modelById,
  parseModelRef,
  type ResolvedModel,
  resolveModel,
  setVersionFields,
  userFieldsOf,
  VERSION_FIELD_NAMES,
  type VersionFields,
  type VersionRow,
  versionById,
  versionsOfModel,
} from "./library-versions.js";
export { MIGRATIONS, type Migration } from "./migrations.js";
export {
  type ImageResourceView,
  type ImageView,
  imageViewById,
  type LinkedFile,
  type ModelInfo,
  type ModelView,
  modelPage,
  modelView,
  type ParentView,
  type RecipeView,
  resourceFiles,
  type UsageView,
  type VersionFileView,
  type VersionView,
  versionViewById,
} from "./model-view.js";
export {
  BUSY_TIMEOUT_MS,
  defaultLibraryPath,
  type LibraryDatabase,
  openLibrary,
  schemaVersion,
} from "./open-library.js";
export {
  type CivitaiHashes,
  civitaiHashes,
  type FindQuery,
  fileIdsByHashPrefix,
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
  type ImageScanSummary,
  rescanLibrary,
  type ScanOptions,
  type ScanSummary,
  scanFolders,
} from "./scan-library.js";
export {
  IMAGE_FILE_EXTENSIONS,
  MAX_WALK_DEPTH,
  MAX_WALK_FILES,
  type WalkedFile,
  walkLibraryFiles,
  walkModelFiles,
} from "./walk-model-files.js";
