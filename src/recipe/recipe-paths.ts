import { isAbsolute, relative, resolve } from "node:path";
import type { Recipe } from "./recipe-types.js";

/**
 * The one rule for paths in a recipe (FORMAT.md): relative paths are relative to the recipe file's
 * folder. A recipe built in one folder (the command line's, or another recipe's) and written into
 * another has its relative paths rewritten so they still name the same files; absolute paths stay.
 */
export function relocateRecipe(
  recipe: Recipe,
  fromDir: string,
  toDir: string,
  /** Which inputs name real files (default: all); the others (a recorded name not found here) stay as written. */
  movesInput: (name: string, path: string) => boolean = () => true,
): Recipe {
  const move = (path: string) => {
    if (isAbsolute(path)) return path;
    return relative(resolve(toDir), resolve(fromDir, path)) || ".";
  };
  const copy = structuredClone(recipe);
  for (const [name, input] of Object.entries(copy.inputs))
    if (movesInput(name, input.path)) input.path = move(input.path);
  copy.output.path = move(copy.output.path);
  if (copy.output.vae.file !== undefined) copy.output.vae.file = move(copy.output.vae.file);
  return copy;
}
