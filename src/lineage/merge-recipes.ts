import { decodeJsonString } from "../metadata/decode-metadata.js";

/**
 * Readers for the merge records other tools leave in `__metadata__` (DOMAIN.md §4). Values are
 * only ever parsed as JSON or matched by regular expressions; anything unexpected is skipped.
 */
export type MergeTool = "gyoza" | "a1111" | "supermerger" | "sd-mecha" | "unknown";

/** One `sd_merge_models` entry: A1111 keys them by the parent's full sha256. */
export interface MergeModelEntry {
  name: string | null;
  legacyHash: string | null;
  /** The parent's own `sd_merge_recipe`, when it was a merge too. */
  recipe: Record<string, unknown> | null;
}

/** A JSON object from a metadata value that may be an object already or a JSON string (A1111 nests both). */
export function asObject(value: unknown): Record<string, unknown> | null {
  const decoded = typeof value === "string" ? decodeJsonString(value) : value;
  return decoded !== null && typeof decoded === "object" && !Array.isArray(decoded)
    ? (decoded as Record<string, unknown>)
    : null;
}

const text = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);

/** `sd_merge_models` as sha256 (lowercase) → entry; malformed entries are skipped. */
export function mergeModels(metadata: Readonly<Record<string, string>>): Map<string, MergeModelEntry> {
  const models = new Map<string, MergeModelEntry>();
  const table = asObject(metadata.sd_merge_models);
  for (const [hash, value] of Object.entries(table ?? {})) {
    const entry = asObject(value);
    if (!entry || !/^[0-9a-fA-F]{10,64}$/.test(hash)) continue;
    models.set(hash.toLowerCase(), {
      name: text(entry.name),
      legacyHash: text(entry.legacy_hash),
      recipe: asObject(entry.sd_merge_recipe),
    });
  }
  return models;
}

/** Which tool wrote an `sd_merge_recipe` object. */
export function mergeRecipeTool(recipe: Record<string, unknown>): MergeTool {
  if (recipe.type === "sd-webui-supermerger") return "supermerger";
  if (recipe.type === "webui") return "a1111";
  if (recipe.type === "gyoza") return "gyoza";
  return "unknown";
}

/** The parents' sha256 hashes an `sd_merge_recipe` names, in order (primary/A first). */
export function mergeRecipeParents(recipe: Record<string, unknown>): string[] {
  const fields =
    mergeRecipeTool(recipe) === "supermerger"
      ? ["model_a", "model_b", "model_c"]
      : ["primary_model_hash", "secondary_model_hash", "tertiary_model_hash"];
  const hashes: string[] = [];
  for (const field of fields) {
    const hash = text(recipe[field]);
    if (hash && /^[0-9a-fA-F]{10,64}$/.test(hash)) hashes.push(hash.toLowerCase());
  }
  return hashes;
}

/** One line describing an `sd_merge_recipe`: "a1111: Weighted sum × 0.3", "supermerger: Weight sum, MBW …". */
export function describeMergeRecipe(recipe: Record<string, unknown>): string {
  const tool = mergeRecipeTool(recipe);
  if (tool === "supermerger") {
    const parts = [String(recipe.mode ?? "?")];
    if (recipe.calcmode && recipe.calcmode !== "normal") parts.push(`calcmode ${recipe.calcmode}`);
    if (recipe.mbw && text(recipe.weights_alpha)) parts.push(`alpha ${recipe.weights_alpha}`);
    else parts.push(`alpha ${recipe.base_alpha ?? "?"}`);
    if (text(recipe.elemental_merge)) parts.push("elemental");
    return `supermerger: ${parts.join(", ")}`;
  }
  const method = String(recipe.interp_method ?? "?");
  return `${tool}: ${method} × ${String(recipe.multiplier ?? "?")}`;
}

/** What an sd-mecha recipe names: its models (paths, no hashes) and its operations in order. */
export interface MechaSummary {
  models: string[];
  operations: string[];
}

const MECHA_MODEL_LINE = /^\s*model\s+"((?:[^"\\]|\\.)*)"/;
const MECHA_CALL_LINE = /^\s*(?:call|merge)\s+"((?:[^"\\]|\\.)*)"/;

/** Reads the `model "…"` and `call "…"` lines of sd-mecha's textual recipe (its .mecha format). */
export function summarizeMechaRecipe(recipeText: string): MechaSummary {
  const models: string[] = [];
  const operations: string[] = [];
  for (const line of recipeText.split(/\r?\n/)) {
    const model = MECHA_MODEL_LINE.exec(line);
    if (model) {
      const path = model[1]!.replace(/\\(.)/g, "$1");
      if (!models.includes(path)) models.push(path);
      continue;
    }
    const call = MECHA_CALL_LINE.exec(line);
    if (call) operations.push(call[1]!);
  }
  return { models, operations };
}
