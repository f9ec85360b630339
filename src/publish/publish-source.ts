/**
 * What `publishVersion` needs to know about one model version: the library's model page reduced to
 * the facts a model card and Civitai's upload form ask for. Kept apart from the library's own
 * types so the layout code can be driven by any source (the library, a test, a JSON file).
 */
export interface PublishSource {
  model: {
    name: string;
    /** Civitai's model type (Checkpoint, LORA, …). */
    type?: string | null;
    /** Merge | Trained, as Civitai's checkpointType. */
    checkpointType?: string | null;
    tags?: readonly string[];
  };
  version: {
    name: string;
    /** Civitai's baseModel ("SD 1.5", "SDXL 1.0"). */
    baseModel?: string | null;
    /** HTML or Markdown, as the author wrote it. */
    description?: string | null;
    trainedWords?: readonly string[];
    clipSkip?: number | null;
    /** Civitai's license name or an SPDX / Hugging Face id. */
    license?: string | null;
    tags?: readonly string[];
    negativeEmbeddings?: readonly string[];
    /** The recommended VAE: its name, and its file when the library knows it. */
    vae?: { name: string; path?: string | null } | null;
    /** Free-form usage notes (recommended sampler, steps, …). */
    usage?: string | null;
  };
  /** The version's files as they sit on disk; the first checkpoint is the one variants are made from. */
  files: readonly PublishSourceFile[];
  /** The gyoza recipe that made this version, when known. */
  recipe?: PublishRecipe | null;
  /** Models this version was made from, with their recipes when known. */
  parents?: readonly { name: string; recipe?: PublishRecipe | null }[];
  /** Sample images, copied byte for byte (their generation metadata kept). */
  images?: readonly { path: string }[];
}

export interface PublishSourceFile {
  path: string;
  /** Civitai's files[].type when the library knows it (Model, Pruned Model, VAE, …). */
  type?: string | null;
}

export interface PublishRecipe {
  /** A name for recipes/NAME.yaml (sanitised before use). */
  name: string;
  /** The recipe's YAML text, as saved. */
  text: string;
}
