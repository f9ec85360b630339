import type { GenerationInfo } from "../image/index.js";
import type { PublishedFile, PublishedImage } from "./publish-manifest.js";
import type { PublishSource } from "./publish-source.js";

/**
 * The version as Civitai's model-version JSON names its fields (the API's `/model-versions/{id}`
 * and the upload form): what a mixer pastes or scripts into Civitai. Image URLs are the paths
 * inside the published folder.
 */
export function civitaiVersionJson(
  source: PublishSource,
  files: readonly PublishedFile[],
  images: readonly PublishedImage[],
): Record<string, unknown> {
  const { model, version } = source;
  const primary = files.find((file) => file.role === "original") ?? files[0];
  return {
    name: version.name,
    model: {
      name: model.name,
      type: model.type ?? "Checkpoint",
      ...(model.checkpointType ? { checkpointType: model.checkpointType } : {}),
      tags: [...(model.tags ?? [])],
    },
    baseModel: version.baseModel ?? null,
    description: version.description ?? null,
    trainedWords: [...(version.trainedWords ?? [])],
    ...(version.clipSkip ? { clipSkip: version.clipSkip } : {}),
    files: files.map((file) => ({
      name: file.name.split("/").pop()!,
      sizeKB: file.sizeBytes / 1024,
      type: file.type,
      metadata: file.metadata,
      hashes: file.hashes,
      ...(file === primary ? { primary: true } : {}),
    })),
    images: images.map((image) => ({
      url: image.name,
      width: image.width,
      height: image.height,
      meta: image.generation ? civitaiImageMeta(image.generation) : null,
    })),
  };
}

/** An image's generation data in Civitai's `images[].meta` names. */
export function civitaiImageMeta(info: GenerationInfo): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  if (info.prompt !== undefined) meta.prompt = info.prompt;
  if (info.negativePrompt !== undefined) meta.negativePrompt = info.negativePrompt;
  if (info.seed !== undefined) meta.seed = info.seed;
  if (info.steps !== undefined) meta.steps = info.steps;
  if (info.sampler !== undefined) meta.sampler = info.sampler;
  if (info.cfgScale !== undefined) meta.cfgScale = info.cfgScale;
  if (info.clipSkip !== undefined) meta.clipSkip = info.clipSkip;
  if (info.width !== undefined && info.height !== undefined) meta.Size = `${info.width}x${info.height}`;
  if (info.model?.hash !== undefined) meta["Model hash"] = info.model.hash;
  if (info.model?.name !== undefined) meta.Model = info.model.name;
  const resources = [
    ...(info.model ? [{ type: "model", ...info.model }] : []),
    ...info.loras.map((lora) => ({ type: "lora", ...lora })),
    ...info.embeddings.map((embedding) => ({ type: "embed", ...embedding })),
  ].map(({ type, name, hash, weight }) => ({
    type,
    ...(name !== undefined ? { name } : {}),
    ...(hash !== undefined ? { hash } : {}),
    ...(weight !== undefined ? { weight } : {}),
  }));
  if (resources.length > 0) meta.resources = resources;
  return meta;
}
