import { basename } from "node:path";
import { AUTOMIX_METADATA_KEY, type AutomixOrigin, readAutomixOrigin } from "../automix/automix-origin.js";
import { ownField } from "../lineage/gyoza-steps.js";
import { asObject, mergeModels, mergeRecipeParents, mergeRecipeTool } from "../lineage/merge-recipes.js";

/** Which tool wrote the recipe a file records. */
export type RecipeFormat = "gyoza" | "a1111" | "supermerger" | "sd-mecha" | "unknown";

/** One model a file was merged from, with the hashes its provenance records (lowercase hex). */
export interface RecordedParent {
  /** The recipe input's name (gyoza), or A/B/C (A1111, supermerger). */
  role: string | null;
  /** File name as recorded, when it is. */
  name: string | null;
  sha256: string | null;
  autov3: string | null;
  autov2: string | null;
  legacyHash: string | null;
}

/** How a file was made and what it says about itself, from its own `__metadata__`. */
export interface FileProvenance {
  /** The recipe text as recorded (gyoza_recipe or sd_merge_recipe JSON, sd-mecha's text); null when none. */
  recipe: string | null;
  recipeFormat: RecipeFormat | null;
  /** modelspec.title (gyoza writes the output's name or `--title`). */
  title: string | null;
  description: string | null;
  author: string | null;
  /** modelspec.encoder_layer: the recommended clip skip. */
  clipSkip: number | null;
  /** modelspec.date. */
  createdAt: string | null;
  /** Other modelspec fields worth showing (architecture, resolution, license, tags, trigger_phrase, …). */
  modelspec: Record<string, string>;
  parents: RecordedParent[];
  /** The automix study trial the file is the candidate of (`gyoza_automix`), when it says so. */
  automix: AutomixOrigin | null;
}

/** Longest text kept from one metadata field: a recipe is a few KB, a description a few pages. */
export const MAX_PROVENANCE_TEXT = 1_000_000;

const MODELSPEC_KEPT = [
  "architecture",
  "resolution",
  "license",
  "tags",
  "trigger_phrase",
  "usage_hint",
  "merged_from",
  "prediction_type",
];

/**
 * Reads a file's merge provenance: gyoza's `gyoza_recipe`, else A1111/supermerger's
 * `sd_merge_recipe`, else sd-mecha's `mecha_recipe`, and the modelspec fields a model page shows.
 * Every value is untrusted text: parsed as JSON only, odd shapes skipped, hashes kept only when hex.
 * Undefined when the metadata says nothing of either.
 */
export function readFileProvenance(metadata: Readonly<Record<string, string>>): FileProvenance | undefined {
  const field = (key: string): string | null => {
    const value = Object.hasOwn(metadata, key) ? metadata[key] : undefined;
    return typeof value === "string" && value.trim() !== "" && value.length <= MAX_PROVENANCE_TEXT
      ? value
      : null;
  };
  const provenance: FileProvenance = {
    recipe: null,
    recipeFormat: null,
    title: field("modelspec.title"),
    description: field("modelspec.description"),
    author: field("modelspec.author"),
    clipSkip: clipSkipOf(field("modelspec.encoder_layer")),
    createdAt: field("modelspec.date"),
    modelspec: {},
    parents: [],
    automix: readAutomixOrigin(field(AUTOMIX_METADATA_KEY)),
  };
  for (const key of MODELSPEC_KEPT) {
    const value = field(`modelspec.${key}`);
    if (value !== null) provenance.modelspec[key] = value;
  }
  const gyoza = field("gyoza_recipe");
  const gyozaRecipe = gyoza === null ? null : asObject(gyoza);
  const mergeRecipeText = field("sd_merge_recipe");
  const mergeRecipe = mergeRecipeText === null ? null : asObject(mergeRecipeText);
  const mecha = field("mecha_recipe");
  if (gyoza !== null && gyozaRecipe) {
    provenance.recipe = gyoza;
    provenance.recipeFormat = "gyoza";
    provenance.parents = gyozaParents(gyozaRecipe, metadata);
  } else if (mergeRecipeText !== null && mergeRecipe) {
    provenance.recipe = mergeRecipeText;
    const tool = mergeRecipeTool(mergeRecipe);
    provenance.recipeFormat =
      tool === "gyoza" || tool === "supermerger" ? tool : tool === "a1111" ? "a1111" : "unknown";
    provenance.parents = a1111Parents(mergeRecipe, metadata);
  } else if (mecha !== null) {
    provenance.recipe = mecha;
    provenance.recipeFormat = "sd-mecha";
  }
  const saysSomething =
    provenance.recipe !== null ||
    provenance.title !== null ||
    provenance.description !== null ||
    provenance.clipSkip !== null ||
    provenance.automix !== null;
  return saysSomething ? provenance : undefined;
}

function clipSkipOf(value: string | null): number | null {
  if (value === null || !/^\s*\d{1,2}\s*$/.test(value)) return null;
  const number = Number(value);
  return number >= 1 && number <= 24 ? number : null;
}

/** A recorded hash as lowercase hex of the expected length (placeholders left by an interrupted merge are not hashes). */
function hex(value: unknown, lengths: readonly number[]): string | null {
  if (typeof value !== "string") return null;
  const lower = value.trim().toLowerCase().replace(/^0x/, "");
  return /^[0-9a-f]+$/.test(lower) && lengths.includes(lower.length) ? lower : null;
}

/** Every input of a gyoza recipe, in recipe order, with the hashes gyoza filled in after hashing. */
function gyozaParents(
  recipe: Record<string, unknown>,
  metadata: Readonly<Record<string, string>>,
): RecordedParent[] {
  const models = mergeModels(metadata);
  const inputs = asObject(ownField(recipe, "inputs")) ?? {};
  return Object.keys(inputs).map((role) => {
    const input = asObject(ownField(inputs, role)) ?? {};
    const sha256 = hex(input.sha256, [64]);
    const recordedPath = typeof input.path === "string" ? basename(input.path.replace(/\\/g, "/")) : null;
    const entry = sha256 ? models.get(sha256) : undefined;
    return {
      role,
      name: recordedPath ?? entry?.name ?? null,
      sha256,
      autov3: hex(input.autov3, [64]),
      autov2: hex(input.autov2, [10]),
      legacyHash: hex(entry?.legacyHash, [8]),
    };
  });
}

/** The A/B/C models an A1111 or supermerger record names, with `sd_merge_models`' names. */
function a1111Parents(
  recipe: Record<string, unknown>,
  metadata: Readonly<Record<string, string>>,
): RecordedParent[] {
  const models = mergeModels(metadata);
  const roles = mergeRecipeTool(recipe) === "gyoza" ? ["input 1", "input 2", "input 3"] : ["A", "B", "C"];
  return mergeRecipeParents(recipe).map((hash, index) => {
    const entry = models.get(hash);
    return {
      role: roles[index] ?? null,
      name: entry?.name ?? null,
      sha256: hash.length === 64 ? hash : null,
      autov3: null,
      autov2: hash.length === 10 ? hash : null,
      legacyHash: hex(entry?.legacyHash, [8]),
    };
  });
}
