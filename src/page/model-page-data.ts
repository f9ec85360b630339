import type { GenerationInfo } from "../image/index.js";
import type { Family } from "../merge/index.js";
import type { Recipe } from "../recipe/index.js";

/**
 * Everything one model page shows, as plain JSON-able data: the renderer is a pure function of it.
 * Names follow Civitai's model page (DOMAIN.md §9): model → versions (newest first) → files, images.
 */
export interface ModelPageData {
  model: PageModel;
  /** Newest first, as the page lists them. */
  versions: PageVersion[];
}

export interface PageModel {
  name: string;
  /** Civitai's model type: Checkpoint, LORA, ... */
  type: string | null;
  tags: string[];
  description: string | null;
}

export interface PageVersion {
  name: string;
  /** "SD 1.5", "SDXL 1.0", ... */
  baseModel: string | null;
  /** ISO-8601 date the version was made or published, when known. */
  createdAt: string | null;
  files: PageFile[];
  /** The gyoza recipe the version's model was made with (from its metadata), if any. */
  recipe: PageRecipe | null;
  /** Models this version was merged from, as named in its provenance. */
  parents: PageParent[];
  images: PageImage[];
  usage: PageUsage;
}

/** Civitai's names: files[].type, metadata {fp, size, format}, hashes {SHA256, AutoV2, ...}. */
export interface PageFile {
  name: string;
  /** Model, Pruned Model, VAE, ... */
  type: string | null;
  sizeBytes: number;
  fp: string | null;
  /** full | pruned */
  size: string | null;
  /** SafeTensor | PickleTensor */
  format: string | null;
  /** Hash name → value, in the order shown (SHA256, AutoV1, AutoV2, AutoV3, BLAKE3, CRC32, ...). */
  hashes: Record<string, string | null>;
  missing: boolean;
}

export interface PageRecipe {
  /** A gyoza recipe that passes gyoza's checks: drawn as a tree with block-weight charts. */
  recipe: Recipe | null;
  /** One line for other tools' records (A1111, supermerger, sd-mecha) or a damaged gyoza one. */
  summary: string | null;
  /** The block layout the weights are drawn against (sd1: 25 UNet slots + BASE, sdxl: 19 + BASE). */
  family: Family;
}

export interface PageParent {
  name: string;
  /** A hash that identifies it (AutoV2 or SHA256), when recorded. */
  hash: string | null;
}

export interface PageUsage {
  /** 1 = last CLIP layer. */
  clipSkip: number | null;
  /** Recommended or baked VAE (file name). */
  vae: string | null;
  negativeEmbeddings: string[];
  trainedWords: string[];
  notes: string | null;
}

export interface PageImage {
  /** The original file on disk; copied byte for byte into the page folder. */
  path: string;
  /** Its generation data as read from its own metadata; null when it carries none. */
  generation: GenerationInfo | null;
}
