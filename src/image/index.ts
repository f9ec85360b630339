export {
  copyMetadata,
  type ImageBytes,
  type MetadataWriteResult,
  readMetadataOf,
  stripMetadata,
} from "./carry-metadata.js";
export { CONTAINER_EXTENSIONS, containerOfName } from "./container-extensions.js";
export { detectGeneration, findComfyGraphs } from "./detect-generation.js";
export { readExifTexts } from "./exif-reader.js";
export { buildExif, type ExifTextFields } from "./exif-writer.js";
export { infoFromInfotext } from "./generators/a1111.js";
export { type Air, parseAir } from "./generators/air.js";
export { infoFromComfyGraph } from "./generators/comfyui.js";
export { type ComfyGraph, toComfyGraph, workflowToGraph } from "./generators/comfyui-graph.js";
export type {
  GenerationInfo,
  GeneratorId,
  HiresSettings,
  ResourceRef,
} from "./generators/generation-info.js";
export { parseLenientJson } from "./generators/lenient-json.js";
export {
  algorithmsFor,
  type LocalFile,
  linkResources,
  type RecordedResource,
  type ResourceLink,
  recordedResources,
} from "./image-link.js";
export {
  formatInfotext,
  type Infotext,
  type InfotextParameter,
  parseInfotext,
  quoteInfotextValue,
  unquoteInfotextValue,
} from "./infotext.js";
export { type ImageContainer, type ImageMetadata, type MetadataText, textsByKey } from "./metadata-types.js";
export { makePngTextChunk, replacePngMetadata } from "./png-writer.js";
export { readImageMetadata, sniffContainer } from "./read-image-metadata.js";
export { readStealthPngInfo, type StealthPngInfo } from "./stealth-pnginfo.js";
export { decodeUserComment, encodeUserComment } from "./user-comment.js";
