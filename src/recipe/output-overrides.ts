import { builtinMethods, type MethodRegistry } from "../merge/index.js";
import { recipeFromData } from "./load-recipe.js";
import type { Recipe, RecipeOutput } from "./recipe-types.js";

/** Output settings a caller may change on a loaded recipe (the CLI's -o, --dtype, --bake-vae …). */
export type OutputOverrides = Partial<
  Pick<RecipeOutput, "path" | "dtype" | "prune" | "vae" | "metadata" | "title">
>;

/**
 * The recipe with its output settings replaced, validated again, and the fields that really
 * changed (`{"output.dtype": "fp32"}`), which the merge records in its provenance.
 */
export function withOutputOverrides(
  recipe: Recipe,
  overrides: OutputOverrides,
  methods: MethodRegistry = builtinMethods,
): { recipe: Recipe; changed: Record<string, unknown> } {
  const changed: Record<string, unknown> = {};
  const output: Record<string, unknown> = { ...recipe.output };
  for (const [field, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (JSON.stringify(output[field]) === JSON.stringify(value)) continue;
    output[field] = value;
    changed[`output.${field}`] = value;
  }
  if (Object.keys(changed).length === 0) return { recipe, changed };
  return { recipe: recipeFromData({ ...recipe, output }, { methods }), changed };
}
