import {
  addResource,
  emptyInfo,
  extraExcept,
  type GenerationInfo,
  isRecord,
  prune,
  toNumber,
  toSeed,
  toText,
} from "./generation-info.js";
import { parseJsonObject } from "./lenient-json.js";

/** Keys that only Easy Diffusion writes (one PNG text chunk per setting, or one JSON UserComment). */
export const EASY_DIFFUSION_MARKERS = ["use_stable_diffusion_model", "num_inference_steps"];

const EASY_DIFFUSION_MAPPED = [
  "prompt",
  "negative_prompt",
  "seed",
  "num_inference_steps",
  "guidance_scale",
  "sampler_name",
  "width",
  "height",
  "clip_skip",
  "use_stable_diffusion_model",
  "use_vae_model",
  "use_lora_model",
  "lora_alpha",
];

/** Easy Diffusion (cmdr2/stable-diffusion-ui): settings as separate text chunks or one JSON object. */
export function infoFromEasyDiffusion(
  fields: Record<string, unknown>,
  raw: Record<string, string>,
): GenerationInfo {
  const info = emptyInfo("easy-diffusion", raw);
  info.prompt = toText(fields.prompt);
  info.negativePrompt = toText(fields.negative_prompt);
  info.seed = toSeed(fields.seed);
  info.steps = toNumber(fields.num_inference_steps);
  info.cfgScale = toNumber(fields.guidance_scale);
  info.sampler = toText(fields.sampler_name);
  info.width = toNumber(fields.width);
  info.height = toNumber(fields.height);
  // Easy Diffusion stores clip skip as a boolean ("True" = skip one layer).
  if (fields.clip_skip !== undefined) info.clipSkip = /^(true|1|2)$/i.test(String(fields.clip_skip)) ? 2 : 1;
  if (typeof fields.use_stable_diffusion_model === "string")
    info.model = { name: fields.use_stable_diffusion_model };
  if (typeof fields.use_vae_model === "string" && fields.use_vae_model !== "")
    info.vae = { name: fields.use_vae_model };
  const loras = fields.use_lora_model;
  const weights = fields.lora_alpha;
  const names = Array.isArray(loras)
    ? loras
    : typeof loras === "string" && loras !== "" && loras !== "None"
      ? loras.split(",")
      : [];
  const alphas = Array.isArray(weights) ? weights : String(weights ?? "").split(",");
  names.forEach((name, i) => {
    if (typeof name === "string" && name.trim())
      addResource(info.loras, { name: name.trim(), weight: toNumber(alphas[i]) });
  });
  extraExcept(info, fields, EASY_DIFFUSION_MAPPED);
  return prune(info);
}

const XML_ENTITIES: Record<string, string> = { quot: '"', amp: "&", lt: "<", gt: ">", apos: "'" };

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (whole, entity: string) => {
    if (entity.startsWith("#x") || entity.startsWith("#X"))
      return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(Number(entity.slice(1)));
    return XML_ENTITIES[entity] ?? whole;
  });
}

/** Draw Things writes its settings as JSON inside the XMP packet's exif:UserComment. */
export function drawThingsJson(xmp: string | undefined): Record<string, unknown> | undefined {
  if (!xmp) return undefined;
  const match = /<exif:UserComment>[\s\S]*?<rdf:li[^>]*>([\s\S]*?)<\/rdf:li>/.exec(xmp);
  const json = match ? parseJsonObject(unescapeXml(match[1]!)) : undefined;
  return json && ("c" in json || "uc" in json) && ("seed" in json || "scale" in json) ? json : undefined;
}

/** Draw Things: `c` prompt, `uc` negative, `scale` CFG, `size` "WxH". */
export function infoFromDrawThings(
  json: Record<string, unknown>,
  raw: Record<string, string>,
): GenerationInfo {
  const info = emptyInfo("drawthings", raw);
  info.prompt = toText(json.c);
  info.negativePrompt = toText(json.uc);
  info.seed = toSeed(json.seed);
  info.steps = toNumber(json.steps);
  info.cfgScale = toNumber(json.scale);
  info.sampler = toText(json.sampler);
  const size = /^(\d+)\s*x\s*(\d+)$/.exec(String(json.size ?? ""));
  if (size) [info.width, info.height] = [Number(size[1]), Number(size[2])];
  if (typeof json.model === "string") info.model = { name: json.model };
  if (Array.isArray(json.lora)) {
    for (const lora of json.lora) {
      if (isRecord(lora))
        addResource(info.loras, {
          name: toText(lora.file) ?? toText(lora.model),
          weight: toNumber(lora.weight),
        });
    }
  }
  extraExcept(info, json, ["c", "uc", "seed", "steps", "scale", "sampler", "size", "model", "lora"]);
  return prune(info);
}
