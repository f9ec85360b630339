import { createHash } from "node:crypto";
import { isAbsolute, resolve } from "node:path";
import { hashFile } from "../hash/index.js";
import { type Family, resolveWeights, type WeightSpec } from "../merge/index.js";
import { planRecipe } from "../plan/index.js";
import type { Recipe, RecipeStep } from "../recipe/index.js";

/**
 * The "gyoza recipe hash": sha256 of a canonical JSON of what decides a merge's tensors — input
 * files by their sha256 (never their paths), steps with their weights resolved for the family
 * (0.5, "0.5", a preset name and its vector all give the key of the per-slot numbers they mean), the output step, dtype, prune and
 * VAE policy (a baked VAE by its sha256). Not the output path, title or metadata policy: the same
 * candidate on another machine or in another folder has the same key.
 */
export const RECIPE_KEY_VERSION = 1;

export interface RecipeKeyFacts {
  /** sha256 (lowercase hex) of each recipe input's file, by input name. */
  inputSha256: Readonly<Record<string, string>>;
  /** sha256 of output.vae.file when the policy is `bake`. */
  bakedVaeSha256?: string;
  /** The inputs' family: weight specs are resolved to per-slot numbers for it. Without it they stay as written. */
  family?: Family;
}

/** The recipe key (64 lowercase hex) from a recipe and the facts about its files. */
export function recipeKey(recipe: Recipe, facts: RecipeKeyFacts): string {
  return createHash("sha256")
    .update(canonicalJson(recipeKeyObject(recipe, facts)))
    .digest("hex");
}

/** What the key hashes, as a plain object (for tests and for humans comparing two keys). */
export function recipeKeyObject(recipe: Recipe, facts: RecipeKeyFacts): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const name of Object.keys(recipe.inputs)) {
    const sha256 = facts.inputSha256[name];
    if (!sha256) throw new Error(`recipeKey: no sha256 for input "${name}"`);
    inputs[name] = { sha256: sha256.toLowerCase() };
  }
  const steps: Record<string, unknown> = {};
  for (const [name, step] of Object.entries(recipe.steps)) steps[name] = canonicalStep(step, facts.family);
  const vae: Record<string, unknown> = { policy: recipe.output.vae.policy };
  if (recipe.output.vae.slot !== undefined) vae.slot = recipe.output.vae.slot;
  if (recipe.output.vae.policy === "bake") {
    if (!facts.bakedVaeSha256) throw new Error("recipeKey: the baked VAE's sha256 is missing");
    vae.sha256 = facts.bakedVaeSha256.toLowerCase();
  }
  return {
    gyoza_recipe_key: RECIPE_KEY_VERSION,
    recipe: recipe.gyoza,
    inputs,
    steps,
    output: {
      ...(recipe.output.step !== undefined ? { step: recipe.output.step } : {}),
      dtype: recipe.output.dtype,
      prune: recipe.output.prune,
      vae,
    },
  };
}

function canonicalStep(step: RecipeStep, family: Family | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...step };
  const weight = (spec: WeightSpec, path: string): unknown => {
    if (!family) return spec;
    try {
      return resolveWeights(spec, family, { path });
    } catch {
      return spec; // the merge itself reports a bad weight; the key keeps what was written
    }
  };
  if (step.alpha !== undefined) out.alpha = weight(step.alpha, "alpha");
  if (step.beta !== undefined) out.beta = weight(step.beta, "beta");
  if (step.params) {
    out.params = Object.fromEntries(
      Object.entries(step.params).map(([key, spec]) => [key, weight(spec, key)]),
    );
  }
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
  return out;
}

/** JSON with object keys sorted at every level, no whitespace; -0 written as 0. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value))
      throw new Error("canonicalJson: non-finite number");
    return JSON.stringify(Object.is(value, -0) ? 0 : value) ?? "null";
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
}

/**
 * The recipe key of a recipe on disk: hashes its inputs (through the hash cache) and reads their
 * headers for the family. Relative paths resolve from `baseDir`.
 */
export async function computeRecipeKey(
  recipe: Recipe,
  options: { baseDir?: string; hashCacheDir?: string | false; signal?: AbortSignal } = {},
): Promise<{ key: string; inputSha256: Record<string, string>; family: Family }> {
  const baseDir = options.baseDir ?? process.cwd();
  const at = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const inputSha256: Record<string, string> = {};
  for (const [name, input] of Object.entries(recipe.inputs)) {
    options.signal?.throwIfAborted();
    const hashes = await hashFile(at(input.path), {
      algorithms: ["sha256"],
      ...(options.hashCacheDir !== undefined ? { cacheDir: options.hashCacheDir } : {}),
    });
    inputSha256[name] = hashes.sha256!.toLowerCase();
  }
  let bakedVaeSha256: string | undefined;
  if (recipe.output.vae.policy === "bake" && recipe.output.vae.file) {
    const hashes = await hashFile(at(recipe.output.vae.file), {
      algorithms: ["sha256"],
      ...(options.hashCacheDir !== undefined ? { cacheDir: options.hashCacheDir } : {}),
    });
    bakedVaeSha256 = hashes.sha256!.toLowerCase();
  }
  // the family from the inputs' headers (planning reads headers only; nothing is merged)
  const planned = await planRecipe(
    { ...recipe, output: { ...recipe.output, path: at("gyoza-recipe-key.safetensors") } },
    { baseDir },
  );
  const family = planned.detection.family as Family;
  await planned.close();
  const key = recipeKey(recipe, { inputSha256, family, ...(bakedVaeSha256 ? { bakedVaeSha256 } : {}) });
  return { key, inputSha256, family };
}
