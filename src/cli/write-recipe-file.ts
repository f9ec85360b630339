import { dirname } from "node:path";
import { writeFileAtomically } from "../io/atomic-file.js";
import { type Recipe, relocateRecipe, saveRecipe } from "../recipe/index.js";

export interface WriteRecipeOptions {
  /** Comment lines written before the recipe. */
  header?: string;
  /** Which inputs name real files (default: all); see `relocateRecipe`. */
  movesInput?: (name: string, path: string) => boolean;
}

/**
 * Writes a recipe whose relative paths are relative to `fromDir` (the current folder, for paths
 * typed on the command line) into `file`, rewriting them relative to the file's folder: the rule
 * every recipe follows (FORMAT.md), so the saved recipe runs from anywhere.
 */
export async function writeRecipeFile(
  recipe: Recipe,
  file: string,
  fromDir: string,
  options: WriteRecipeOptions = {},
): Promise<void> {
  const relocated = relocateRecipe(recipe, fromDir, dirname(file), options.movesInput);
  await writeFileAtomically(file, new TextEncoder().encode((options.header ?? "") + saveRecipe(relocated)));
}
