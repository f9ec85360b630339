import { basename, dirname, extname, join } from "node:path";
import type { ElementalOverride } from "../merge/elemental.js";
import { type Recipe, recipeFromData } from "../recipe/index.js";
import type { OutputDtype } from "../recipe/recipe-types.js";
import type { Recovery } from "./recover-weights.js";

/** Decimals kept in an emitted recipe: far below the estimate's own error, short enough to read. */
const RECIPE_DECIMALS = 4;

const rounded = (value: number | null): number => Number((value ?? 0).toFixed(RECIPE_DECIMALS));

export interface RecoveryRecipeOptions {
  /** Parent paths in order A, B[, C], as the recipe should name them. */
  parents: readonly string[];
  /** The merged model the recipe rebuilds (names the output). */
  merged: string;
  dtype: OutputDtype;
}

/**
 * A gyoza recipe that rebuilds the merged model from its parents with the recovered weights,
 * overrides and VAE policy. Slots where the parents are identical (any α fits) get 0.
 */
export function recoveryRecipe(recovery: Recovery, options: RecoveryRecipeOptions): Recipe {
  const names = ["a", "b", "c"].slice(0, options.parents.length);
  const alpha = recovery.slots.map((slot) => rounded(slot.alpha));
  const overrides: ElementalOverride[] = recovery.overrides.map((override) => ({
    block: override.block,
    pattern: override.pattern,
    value: rounded(override.value),
  }));
  const policy = recovery.vae?.policy ?? "keep-a";
  const stem = basename(options.merged, extname(options.merged));
  // An estimate may land a hair outside 0..1 (or a merge really extrapolated): say so, as a recipe must.
  const extrapolates = [...alpha, ...overrides.map((override) => override.value)].some((v) => v < 0 || v > 1);
  return recipeFromData(
    {
      gyoza: 1,
      inputs: Object.fromEntries(names.map((name, i) => [name, { path: options.parents[i]! }])),
      steps: {
        recovered: {
          method: recovery.mode,
          inputs: Object.fromEntries(names.map((name) => [name, name])),
          alpha,
          block_rule: recovery.rule,
          ...(overrides.length > 0 ? { overrides } : {}),
          ...(extrapolates ? { extrapolate: true } : {}),
        },
      },
      output: {
        path: join(dirname(options.merged), `${stem}-rebuilt.safetensors`),
        dtype: options.dtype,
        vae: policy === "merge" ? { policy, slot: "BASE" } : { policy },
        metadata: "full",
      },
    },
    { sourceName: "recovered recipe" },
  );
}
