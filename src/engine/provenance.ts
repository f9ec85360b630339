import { basename } from "node:path";
import type { Detection } from "../arch/detect.js";
import { AUTOMIX_METADATA_KEY, type AutomixOrigin, automixOriginText } from "../automix/automix-origin.js";
import { decodeJsonString } from "../metadata/decode-metadata.js";
import { mergeDate } from "./source-date.js";

/** How much of a merge's origin the output records (a privacy switch). */
export type ProvenanceLevel = "full" | "hashes" | "none";

export interface ProvenanceInput {
  name: string;
  path: string;
  /** The input's own __metadata__, for absorbing its sd_merge_models lineage. */
  metadata: Readonly<Record<string, string>>;
}

/** Fixed-length stand-ins for values known only after the inputs are hashed (patched in place). */
export type PlaceholderKind = "sha256" | "autov3" | "autov2" | "legacy";
const PLACEHOLDER_SHAPE: Record<PlaceholderKind, { letter: string; length: number }> = {
  sha256: { letter: "S", length: 64 },
  autov3: { letter: "V", length: 64 },
  autov2: { letter: "N", length: 10 },
  legacy: { letter: "L", length: 8 },
};

export function hashPlaceholder(kind: PlaceholderKind, index: number): string {
  const { letter, length } = PLACEHOLDER_SHAPE[kind];
  return `~${letter}${index}~`.padEnd(length, "~");
}

export interface ProvenanceOptions {
  level: ProvenanceLevel;
  detection: Detection;
  outputPath: string;
  title?: string;
  description?: string;
  author?: string;
  /** Recommended clip skip → modelspec.encoder_layer. */
  clipSkip?: number;
  inputs: readonly ProvenanceInput[];
  /** The gyoza recipe as a plain object (inputs are given hashes from the placeholders). */
  recipe: Record<string, unknown>;
  /** Recipe fields the command line changed (`{"output.dtype": "fp32"}`): the recipe above already holds them. */
  overrides?: Record<string, unknown>;
  /** A1111-style summary of the final step. */
  summary: {
    method: string;
    multiplier: string;
    saveAsHalf: boolean;
    bakeInVae: string | null;
    discardWeights: string;
  };
  unetDtype?: string;
  date?: Date;
  /** The automix study trial this merge is the candidate of (`gyoza automix best --merge`). */
  automix?: AutomixOrigin;
}

/**
 * The output's `__metadata__`: modelspec, gyoza's own replayable recipe, and A1111-compatible
 * `sd_merge_recipe` / `sd_merge_models` (absorbing the parents' lineage) so web UIs show it.
 * Input hashes are placeholders here, replaced once hashing finishes (same length, no rewrite).
 */
export function buildProvenance(options: ProvenanceOptions): Record<string, string> {
  const { detection } = options;
  const metadata: Record<string, string> = {};
  if (detection.modelspec) {
    metadata["modelspec.sai_model_spec"] = "1.0.0";
    metadata["modelspec.architecture"] = detection.modelspec;
    metadata["modelspec.implementation"] = "sgm";
    metadata["modelspec.title"] = options.title ?? basename(options.outputPath).replace(/\.[^.]+$/, "");
    if (detection.resolution) metadata["modelspec.resolution"] = detection.resolution;
  }
  if (options.level === "none") return metadata;
  metadata["modelspec.date"] = (options.date ?? mergeDate()).toISOString();
  if (options.description) metadata["modelspec.description"] = options.description;
  if (options.author) metadata["modelspec.author"] = options.author;
  if (options.clipSkip !== undefined) metadata["modelspec.encoder_layer"] = String(options.clipSkip);
  if (options.unetDtype) metadata["modelspec.unet_dtype"] = options.unetDtype;
  const full = options.level === "full";
  const displayName = (input: ProvenanceInput, index: number) =>
    full ? basename(input.path) : hashPlaceholder("autov2", index);
  metadata["modelspec.merged_from"] = options.inputs.map(displayName).join(", ");

  const recipe = structuredClone(options.recipe);
  const recipeInputs = (recipe.inputs ?? {}) as Record<string, Record<string, unknown>>;
  options.inputs.forEach((input, index) => {
    const entry = recipeInputs[input.name] ?? {};
    if (!full) delete entry.path;
    entry.sha256 = hashPlaceholder("sha256", index);
    entry.autov3 = hashPlaceholder("autov3", index);
    recipeInputs[input.name] = entry;
  });
  recipe.inputs = recipeInputs;
  metadata.gyoza_recipe = JSON.stringify(recipe);
  if (options.automix) metadata[AUTOMIX_METADATA_KEY] = automixOriginText(options.automix);
  if (options.overrides && Object.keys(options.overrides).length > 0) {
    const overrides = { ...options.overrides };
    if (!full) delete overrides["output.path"];
    metadata.gyoza_overrides = JSON.stringify(overrides);
  }

  const mergeRecipe: Record<string, unknown> = {
    type: "gyoza",
    primary_model_hash: options.inputs[0] ? hashPlaceholder("sha256", 0) : null,
    secondary_model_hash: options.inputs[1] ? hashPlaceholder("sha256", 1) : null,
    tertiary_model_hash: options.inputs[2] ? hashPlaceholder("sha256", 2) : null,
    interp_method: options.summary.method,
    multiplier: options.summary.multiplier,
    save_as_half: options.summary.saveAsHalf,
    custom_name: full ? (metadata["modelspec.title"] ?? null) : null,
    config_source: 0,
    bake_in_vae: options.summary.bakeInVae,
    discard_weights: options.summary.discardWeights,
    is_inpainting: detection.id.endsWith("inpaint"),
    is_instruct_pix2pix: false,
  };
  metadata.sd_merge_recipe = JSON.stringify(mergeRecipe);

  const models: Record<string, unknown> = {};
  options.inputs.forEach((input, index) => {
    const parents = decodeJsonString(input.metadata.sd_merge_models ?? "");
    if (parents && typeof parents === "object" && !Array.isArray(parents)) Object.assign(models, parents);
    const parentRecipe = decodeJsonString(input.metadata.sd_merge_recipe ?? "");
    models[hashPlaceholder("sha256", index)] = {
      name: full ? basename(input.path) : null,
      legacy_hash: hashPlaceholder("legacy", index),
      sd_merge_recipe: typeof parentRecipe === "object" ? parentRecipe : null,
    };
  });
  metadata.sd_merge_models = JSON.stringify(models);
  return metadata;
}
