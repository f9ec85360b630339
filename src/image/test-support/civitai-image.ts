import { buildExif } from "../exif-writer.js";
import { makeExifSegment } from "../jpeg-writer.js";
import { buildJpeg } from "./test-images.js";

/** The AIRs (Civitai model ids) the test image names. */
export const CIVITAI_AIRS = {
  checkpoint: "urn:air:sd1:checkpoint:civitai:4384@128713",
  detailLora: "urn:air:sd1:lora:civitai:64560@69190",
  styleLora: "urn:air:sd1:lora:civitai:150182@167845",
  negativeEmbedding: "urn:air:sd1:embedding:civitai:99890@106916",
  upscaler: "urn:air:other:upscaler:civitai:147759@164821",
};

const clip = (from: string) => [from, 1];
/** smZ CLIPTextEncode as Civitai's generator fills it (A1111 prompt parser, SD1 settings). */
const smzEncode = (text: string, title: string) => ({
  class_type: "smZ CLIPTextEncode",
  inputs: {
    text,
    parser: "A1111",
    mean_normalization: true,
    multi_conditioning: true,
    use_old_emphasis_implementation: false,
    with_SDXL: false,
    clip: clip("resource-stack-2"),
  },
  _meta: { title },
});
const sampler = (inputs: Record<string, unknown>) => ({
  class_type: "KSampler",
  inputs: {
    sampler_name: "dpmpp_2m",
    scheduler: "karras",
    seed: 2433638737,
    cfg: 7,
    model: ["resource-stack-2", 0],
    positive: ["6", 0],
    negative: ["7", 0],
    ...inputs,
  },
});

/**
 * What Civitai's on-site generator writes into a JPEG's UserComment, in the shape of the images it
 * serves: the ComfyUI API graph itself, its loaders as `resource-stack` nodes named by AIR, a hires
 * pass through an upscale model, and at the top level `extra.airs` and `extraMetadata` (JSON text
 * with the settings as typed on the site).
 */
export const CIVITAI_GRAPH = {
  "resource-stack": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: CIVITAI_AIRS.checkpoint } },
  "resource-stack-1": {
    class_type: "LoraLoader",
    inputs: {
      lora_name: CIVITAI_AIRS.detailLora,
      strength_model: 0.45,
      strength_clip: 1,
      model: ["resource-stack", 0],
      clip: clip("resource-stack"),
    },
  },
  "resource-stack-2": {
    class_type: "LoraLoader",
    inputs: {
      lora_name: CIVITAI_AIRS.styleLora,
      strength_model: 0.8,
      strength_clip: 1,
      model: ["resource-stack-1", 0],
      clip: clip("resource-stack-1"),
    },
  },
  "6": smzEncode("a bowl of gyoza, steam, wooden table\n", "Positive"),
  "7": smzEncode(`embedding:${CIVITAI_AIRS.negativeEmbedding}, blurry, lowres`, "Negative"),
  "5": { class_type: "EmptyLatentImage", inputs: { width: 512, height: 768, batch_size: 1 } },
  "11": sampler({ steps: 25, denoise: 1, latent_image: ["5", 0] }),
  "13": { class_type: "VAEDecode", inputs: { samples: ["11", 0], vae: ["resource-stack", 2] } },
  "24": { class_type: "UpscaleModelLoader", inputs: { model_name: CIVITAI_AIRS.upscaler } },
  "25": { class_type: "ImageUpscaleWithModel", inputs: { upscale_model: ["24", 0], image: ["13", 0] } },
  "26": {
    class_type: "ImageScale",
    inputs: { upscale_method: "nearest-exact", width: 768, height: 1152, crop: "disabled", image: ["25", 0] },
  },
  "27": { class_type: "VAEEncode", inputs: { pixels: ["26", 0], vae: ["resource-stack", 2] } },
  "21": sampler({ steps: 12, denoise: 0.4, latent_image: ["27", 0] }),
  "28": { class_type: "VAEDecode", inputs: { samples: ["21", 0], vae: ["resource-stack", 2] } },
  "12": { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["28", 0] } },
  extra: { airs: Object.values(CIVITAI_AIRS) },
  extraMetadata: JSON.stringify({
    prompt: "a bowl of gyoza, steam, wooden table",
    negativePrompt: "blurry, lowres",
    cfgScale: 7,
    sampler: "DPM++ 2M Karras",
    clipSkip: 2,
    steps: 25,
    seed: 2433638737,
    width: 512,
    height: 768,
    workflowId: "txt2img-hires",
    resources: [
      { modelVersionId: 128713, strength: 1 },
      { modelVersionId: 69190, strength: 0.45 },
      { modelVersionId: 167845, strength: 0.8 },
    ],
  }),
};

/** A JPEG as Civitai's generator serves it: the graph JSON in the EXIF UserComment ('UNICODE\0' + UTF-16). */
export function buildCivitaiJpeg(graph: object = CIVITAI_GRAPH): Uint8Array {
  return buildJpeg(768, 1152, [makeExifSegment(buildExif({ userComment: JSON.stringify(graph) }))]);
}
