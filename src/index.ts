/**
 * gyoza's public API: what `import { … } from "gyoza"` gives. Only re-exports, chosen one by one:
 * everything here is documented and kept stable; anything not here (kernels' internals, read
 * queues, writers, planners) may change without notice. The README's "Library" section shows it in use.
 */

export { type DiffOptions, type DiffStats, diffModels, type ModelDiff } from "./analysis/diff-models.js";
export {
  type RecoverOptions,
  type Recovery,
  recoverWeights,
  type SlotRecovery,
} from "./analysis/recover-weights.js";
export type { EmbeddingReport } from "./arch/embedding.js";
export { type InspectReport, type InspectWarning, inspectCheckpoint } from "./arch/inspect-checkpoint.js";
export type { LoraFormat, LoraReport } from "./arch/lora/inspect-lora.js";
export type { TrainingSummary } from "./arch/lora/training-metadata.js";
export { type GyozaConfig, loadGyozaConfig, pickBackend } from "./backends/config.js";
export { createBackend } from "./backends/index.js";
export type {
  BackendCheck,
  BackendCheckItem,
  BackendConfig,
  BackendKind,
  GeneratedImage,
  GenerateOptions,
  GenerateRequest,
  GenerationBackend,
  GenerationParams,
  GenerationProgress,
} from "./backends/types.js";
export {
  CivitaiClient,
  type CivitaiClientOptions,
} from "./civitai/civitai-client.js";
export type {
  CivitaiFile,
  CivitaiImage,
  CivitaiModel,
  CivitaiModelVersion,
} from "./civitai/civitai-schemas.js";
export { type FetchSummary, fetchCivitaiFacts } from "./civitai/fetch-library-facts.js";
export type { MergeResult } from "./engine/execute-merge.js";
export { type RunRecipeOptions, runRecipe } from "./engine/run-recipe.js";
export { GyozaError, type GyozaErrorCode, type GyozaErrorOptions, isGyozaError } from "./errors.js";
export type { FileHashes, HashAlgorithm } from "./hash/file-hashes.js";
export {
  type FileHashResult,
  type HashFileOptions,
  type HashOptions,
  hashBytes,
  hashFile,
  hashFiles,
} from "./hash/hash-file.js";
export {
  copyMetadata,
  type ImageBytes,
  type MetadataWriteResult,
  readMetadataOf,
  stripMetadata,
} from "./image/carry-metadata.js";
export { detectGeneration } from "./image/detect-generation.js";
export type { Air } from "./image/generators/air.js";
export type {
  GenerationInfo,
  GeneratorId,
  HiresSettings,
  ResourceRef,
} from "./image/generators/generation-info.js";
export {
  type ImageContainer,
  type ImageMetadata,
  type MetadataText,
  textsByKey,
} from "./image/metadata-types.js";
export type { DType } from "./io/dtype.js";
export { decodeToFloat32 } from "./io/float-convert.js";
export { openCheckpoint } from "./io/open-checkpoint.js";
export { readTensorBytes } from "./io/read-tensor.js";
export type { Checkpoint, CheckpointFormat, StoredTensor } from "./io/tensor.js";
export { type KernelPreference, loadKernel } from "./kernels/load-kernel.js";
export type { KernelName, MergeKernel } from "./kernels/merge-kernel.js";
export type {
  FileProvenance,
  RecipeFormat,
  RecordedParent,
} from "./library/file-provenance.js";
export type { FileKind } from "./library/identify-file.js";
export type { FileRow, FileVersionRow, HashRow } from "./library/library-store.js";
export { LibraryStore } from "./library/library-store.js";
export {
  childrenOf,
  groupFiles,
  listModels,
  type ModelRow,
  setVersionFields,
  type VersionFields,
  type VersionRow,
} from "./library/library-versions.js";
export type {
  ImageResourceView,
  ImageView,
  LinkedFile,
  ModelInfo,
  ModelView,
  ParentView,
  RecipeView,
  UsageView,
  VersionFileView,
  VersionView,
} from "./library/model-view.js";
export { modelPage } from "./library/model-view.js";
export { defaultLibraryPath, type LibraryDatabase, openLibrary } from "./library/open-library.js";
export {
  type CivitaiHashes,
  type FindQuery,
  findEntries,
  type LibraryEntry,
  listEntries,
  showEntry,
} from "./library/query-library.js";
export {
  addToLibrary,
  type ImageScanSummary,
  rescanLibrary,
  type ScanOptions,
  type ScanSummary,
} from "./library/scan-library.js";
export { builtinPresets, findPreset, type Preset, type PresetTable } from "./merge/presets.js";
export type { Family } from "./merge/slots.js";
export type { ModelPageData } from "./page/model-page-data.js";
export {
  type LibraryModelPage,
  writeLibraryModelPage,
} from "./page/write-library-model-page.js";
export {
  type WriteModelPageOptions,
  type WrittenImage,
  type WrittenModelPage,
  writeModelPage,
} from "./page/write-model-page.js";
export type { ProgressEvent, ProgressListener } from "./progress.js";
export type { PublishedFile, PublishedImage, PublishManifest } from "./publish/publish-manifest.js";
export type { PublishVariant } from "./publish/publish-model-files.js";
export type { PublishSource } from "./publish/publish-source.js";
export { type PublishOptions, publishVersion } from "./publish/publish-version.js";
export { publishSourceFromLibrary } from "./publish/source-from-library.js";
export { type LoadRecipeOptions, loadRecipe, recipeFromData } from "./recipe/load-recipe.js";
export type {
  MetadataPolicy,
  OutputDtype,
  Recipe,
  RecipeInput,
  RecipeOutput,
  RecipeStep,
  RecipeVae,
  VaePolicy,
} from "./recipe/recipe-types.js";
