export { checkCompatible } from "./check-compatible.js";
export {
  BAKED_VAE_SOURCE,
  type FinishChoices,
  finishPlan,
  prunedKeep,
  type UnfinishedKey,
  type VaeFinish,
} from "./finish-plan.js";
export { formatPlan } from "./format-plan.js";
export {
  type CombiningOp,
  deepFreeze,
  firstRead,
  type MergePlan,
  opsOf,
  type PlanFinishing,
  type PlanKey,
  type PlanOp,
  type PlanOutput,
  type PlanStepSummary,
  type ReadOp,
} from "./merge-plan.js";
export { type PlanMergeOptions, type PlanStep, planMerge } from "./plan-merge.js";
export { outputStepOf, type PlannedRecipe, type PlanRecipeOptions, planRecipe } from "./plan-recipe.js";
