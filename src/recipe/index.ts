export {
  INLINE_LORA_STEP,
  INLINE_STEP,
  type InlineMergeArgs,
  recipeFromInlineArgs,
} from "./inline-recipe.js";
export { type LoadRecipeOptions, loadRecipe, MAX_RECIPE_BYTES, recipeFromData } from "./load-recipe.js";
export { type InlineLora, loraInputName, parseLoraArgument } from "./lora-argument.js";
export { type OutputOverrides, withOutputOverrides } from "./output-overrides.js";
export { finalSteps, rootInput, topologicalSteps } from "./recipe-dag.js";
export { formatPath } from "./recipe-errors.js";
export { relocateRecipe } from "./recipe-paths.js";
export type {
  MetadataPolicy,
  OutputDtype,
  Recipe,
  RecipeInput,
  RecipeOutput,
  RecipeStep,
  RecipeVae,
  VaePolicy,
} from "./recipe-types.js";
export { RECIPE_VERSION } from "./recipe-types.js";
export { type ResolveStepOptions, resolveStepWeights, type StepWeights } from "./resolve-step-weights.js";
export { saveRecipe } from "./save-recipe.js";
export { type ValidateOptions, validateRecipe } from "./validate-recipe.js";
