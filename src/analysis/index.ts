export {
  type AlignedChunk,
  type AlignedKey,
  ANALYSIS_CHUNK_ELEMENTS,
  alignedChunks,
} from "./aligned-chunks.js";
export {
  type AnalysisKey,
  type AnalysisKeys,
  analysisKeys,
  describeShapeMismatches,
  type ShapeMismatch,
  shapeMismatches,
} from "./analysis-keys.js";
export { type DiffOptions, type DiffStats, diffModels, type ModelDiff } from "./diff-models.js";
export { diffPlotPng, diffPlotSvg, similarityColor } from "./diff-plot.js";
export { fitAlpha, type KeyFit, type MergeMode, measureKeyFits, squaredError } from "./key-fits.js";
export { type NearestPreset, nearestPreset } from "./nearest-preset.js";
export {
  type CandidateScore,
  compareFits,
  DEFAULT_EXACT_PAIRS,
  type FitOrder,
  type PairScore,
  type ParentRanking,
  type RankParentsOptions,
  rankParents,
  type SkippedCandidate,
} from "./rank-parents.js";
export {
  type RecoverOptions,
  type Recovery,
  recoverWeights,
  type SlotRecovery,
  solveRecovery,
  UNEXPLAINED_RESIDUAL,
} from "./recover-weights.js";
export { type RecoveryRecipeOptions, recoveryRecipe } from "./recovery-recipe.js";
export { DEFAULT_SAMPLE_ELEMENTS, readSamples, type SamplePlan, samplePlan } from "./sample-plan.js";
export { type DetectedOverride, MIN_OVERRIDE_DELTA, type SlotSolution, solveSlot } from "./solve-slot.js";
export { withCheckpoints } from "./with-checkpoints.js";
