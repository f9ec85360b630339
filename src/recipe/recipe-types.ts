import type { BlockRule, ElementalOverride, WeightSpec } from "../merge/index.js";

/**
 * A recipe as loaded: the YAML file's own shape (snake_case keys, as users write them), with
 * defaults filled in so the engine never guesses. `saveRecipe` writes exactly this back.
 */
export const RECIPE_VERSION = 1;

export interface RecipeInput {
  path: string;
  /** Expected sha256 of the whole file (lowercase hex); checked before merging. */
  sha256?: string;
  /** Expected AutoV3 (sha256 of the safetensors data section), full or Civitai's 12-hex prefix. */
  autov3?: string;
}

/** A LoRA a step bakes in (`loras:` of an add_lora step). */
export interface RecipeLora {
  /** The recipe input whose file is the LoRA. */
  input: string;
  /** How much of it: LBW's and supermerger's multiplier (1 = as trained). */
  ratio: number;
  /** LoRA Block Weight: 12/17/20/26 values (a list or comma text, BASE first) or a preset name; default every block 1. */
  weights?: string | number[];
}

export interface RecipeStep {
  method: string;
  /** Method input name → recipe input or earlier step name. */
  inputs: Record<string, string>;
  alpha?: WeightSpec;
  beta?: WeightSpec;
  /** Other method parameters (and alpha/beta, when not given above). */
  params?: Record<string, WeightSpec>;
  block_rule: BlockRule;
  overrides?: ElementalOverride[];
  arithmetic: "fp32" | "lerp";
  seed?: number;
  /** Allow mixing weights outside 0..1 (extrapolation past the inputs); refused without it. */
  extrapolate?: boolean;
  /** The LoRAs an add_lora step bakes into its input, applied in this order. */
  loras?: RecipeLora[];
}

export type VaePolicy = "keep-a" | "take-b" | "merge" | "bake";

export interface RecipeVae {
  policy: VaePolicy;
  /** For `merge`: the slot whose weight the VAE tensors take (BASE, VAE, …). */
  slot?: string;
  /** For `bake`: a VAE file whose tensors replace `first_stage_model.*`. */
  file?: string;
}

export type OutputDtype = "fp16" | "bf16" | "fp32";
export type MetadataPolicy = "full" | "hashes" | "none";

export interface RecipeOutput {
  /** The step written out; optional when exactly one step is not used by another. */
  step?: string;
  path: string;
  dtype: OutputDtype;
  /** Drop EMA copies and junk keys. */
  prune: boolean;
  vae: RecipeVae;
  /** Provenance written into the file: the recipe and hashes, hashes only, or nothing. */
  metadata: MetadataPolicy;
  title?: string;
  description?: string;
  author?: string;
  license?: string;
  tags?: string[];
  /** Recommended clip skip (modelspec `encoder_layer`). */
  clip_skip?: number;
}

export interface Recipe {
  gyoza: typeof RECIPE_VERSION;
  inputs: Record<string, RecipeInput>;
  steps: Record<string, RecipeStep>;
  output: RecipeOutput;
}
