/**
 * `gyoza publish`: one model version laid out as a mixer uploads it (issue #21): files and
 * converted variants with hashes, a Hugging Face model card, recipes, sample images, civitai.json.
 */
export { civitaiImageMeta, civitaiVersionJson } from "./civitai-json.js";
export { extractBakedVae } from "./extract-vae.js";
export { fileStem, uniqueName } from "./file-names.js";
export { huggingFaceBaseModel, huggingFaceLicense, modelCard, modelCardFrontMatter } from "./model-card.js";
export type {
  CivitaiFileHashes,
  PublishedFile,
  PublishedImage,
  PublishedRole,
  PublishManifest,
} from "./publish-manifest.js";
export { PUBLISH_VARIANTS, type PublishVariant } from "./publish-model-files.js";
export type { PublishRecipe, PublishSource, PublishSourceFile } from "./publish-source.js";
export {
  type PublishOptions,
  publishVersion,
} from "./publish-version.js";
export { recipeTree } from "./recipe-tree.js";
export { publishSourceFromLibrary } from "./source-from-library.js";
