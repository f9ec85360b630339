import { parseDocument } from "yaml";
import { GyozaError } from "../errors.js";
import { builtinMethods, type MethodRegistry } from "../merge/index.js";
import { fromZodIssue, recipeError } from "./recipe-errors.js";
import { recipeSchema } from "./recipe-schema.js";
import type { Recipe } from "./recipe-types.js";
import { validateRecipe } from "./validate-recipe.js";

/** A recipe is a small hand-written text; anything bigger is a mistake or hostile (CWE-400). */
export const MAX_RECIPE_BYTES = 1_000_000;
/** YAML aliases can expand exponentially ("billion laughs"); a recipe never needs many. */
const MAX_YAML_ALIASES = 100;

export interface LoadRecipeOptions {
  /** File name or "inline", for error messages. */
  sourceName?: string;
  methods?: MethodRegistry;
}

/** Parses, schema-checks and validates a YAML recipe; every error is a GyozaError "recipe" with its path. */
export function loadRecipe(text: string, options: LoadRecipeOptions = {}): Recipe {
  const file = options.sourceName;
  if (Buffer.byteLength(text, "utf8") > MAX_RECIPE_BYTES) {
    throw new GyozaError("limit", `a recipe is at most ${MAX_RECIPE_BYTES} bytes`, { file });
  }
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const problem = document.errors[0];
  if (problem) {
    const line = problem.linePos?.[0];
    const where = line ? `line ${line.line}, column ${line.col}` : "";
    throw recipeError(`not valid YAML: ${problem.message.split("\n")[0]}`, where, file);
  }
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (error) {
    throw recipeError(`not a usable YAML document: ${(error as Error).message}`, "", file);
  }
  return recipeFromData(data, { ...options, sourceName: file });
}

/** Schema-checks and validates already-parsed recipe data (what `loadRecipe` does after YAML). */
export function recipeFromData(data: unknown, options: LoadRecipeOptions = {}): Recipe {
  const file = options.sourceName;
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw recipeError("a recipe is a YAML mapping with gyoza, inputs, steps and output", "", file);
  }
  const parsed = recipeSchema.safeParse(data);
  if (!parsed.success) throw fromZodIssue(parsed.error.issues[0]!, data, file);
  const recipe = parsed.data as Recipe;
  if (recipe.output.vae.policy === "merge" && recipe.output.vae.slot === undefined)
    recipe.output.vae.slot = "BASE";
  validateRecipe(recipe, { methods: options.methods ?? builtinMethods, file });
  return recipe;
}
