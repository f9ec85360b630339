/**
 * Civitai's AI Resource Identifier (AIR), the model name its on-site generator writes into a graph:
 * `urn:air:{ecosystem}:{type}:{source}:{id}[@{version}][+{fileId}][.{format}]`, e.g.
 * `urn:air:sd1:checkpoint:civitai:4384@128713` (https://developer.civitai.com/site/guide/air). The
 * older wiki spec's `:{layer}` suffix is not written by any generator seen and is not accepted.
 */
export interface Air {
  /** Model family: `sd1`, `sdxl`, `pony`, `flux1`, `illustrious`, `other`, ... */
  ecosystem: string;
  /** Resource kind: `checkpoint`, `lora`, `embedding`, `vae`, `upscaler`, ... */
  type: string;
  /** Where it is hosted: `civitai`, `civitai-r2`, `huggingface`, `orchestrator`, ... */
  source: string;
  /** The resource's id at its source (on Civitai: the model id, digits). */
  modelId: string;
  /** On Civitai: the model version id (digits); absent means the latest version. */
  versionId?: string;
  /** A particular file of the version (`+id`). */
  fileId?: string;
  /** File format (`safetensor`, `ckpt`, ...). */
  format?: string;
}

/** Real AIRs are well under 100 characters; anything this long is some other text. */
const MAX_AIR_LENGTH = 512;

/** Ecosystem, type and source are words; id and version stop at the next delimiter (`@`, `+`, `.`). */
const AIR_PATTERN =
  /^urn:air:([a-z0-9][\w.-]*):([a-z0-9][\w-]*):([a-z0-9][\w-]*):([^\s:@+.][^\s:@+]*?)(?:@([^\s:@+.]+))?(?:\+(\d+))?(?:\.(\w+))?$/i;

/** Civitai's model and version ids are database integers. */
const CIVITAI_ID = /^\d+$/;

/** The parts of an AIR, or undefined when `text` is not a well-formed one (it is then just a name). */
export function parseAir(text: string): Air | undefined {
  if (text.length > MAX_AIR_LENGTH) return undefined;
  const match = AIR_PATTERN.exec(text);
  if (!match) return undefined;
  const [, ecosystem, type, source, modelId, versionId, fileId, format] = match;
  if (source!.toLowerCase() === "civitai") {
    if (!CIVITAI_ID.test(modelId!) || (versionId !== undefined && !CIVITAI_ID.test(versionId)))
      return undefined;
  }
  const air: Air = { ecosystem: ecosystem!, type: type!, source: source!, modelId: modelId! };
  if (versionId !== undefined) air.versionId = versionId;
  if (fileId !== undefined) air.fileId = fileId;
  if (format !== undefined) air.format = format;
  return air;
}
