export {
  attachMatches,
  type LineageMerge,
  type LineageNode,
  lineageFromMetadata,
  MAX_LINEAGE_DEPTH,
  MAX_LINEAGE_NODES,
  type ReadLineageOptions,
  readLineage,
} from "./build-lineage.js";
export {
  type CivitaiFileFacts,
  civitaiFacts,
  civitaiFactsIfCheckpoint,
  formatCivitaiFacts,
  readCivitaiFacts,
} from "./civitai-facts.js";
export {
  type ImportedRecipe,
  type ImportOptions,
  importMergeRecipe,
  importMergeRecipeFromFile,
  type NotCarried,
} from "./import-merge-recipe.js";
export {
  asObject,
  describeMergeRecipe,
  type MechaSummary,
  type MergeModelEntry,
  type MergeTool,
  mergeModels,
  mergeRecipeParents,
  mergeRecipeTool,
  summarizeMechaRecipe,
} from "./merge-recipes.js";
export {
  embeddedRecipeData,
  type ReplayedInput,
  type ReplayOptions,
  type ReplayResult,
  replayMerge,
} from "./replay-merge.js";
export {
  type FileMatch,
  type FindResult,
  findByHash,
  HashIndex,
  type IndexedFile,
  type KnownHashes,
  listModelFiles,
  MAX_SEARCH_DEPTH,
  MAX_SEARCH_FILES,
  type MatchedBy,
  MODEL_FILE_EXTENSIONS,
  matchFile,
  type WantedFile,
} from "./search-by-hash.js";
