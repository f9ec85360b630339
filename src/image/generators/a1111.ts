import { type Infotext, infotextValue, parseInfotext } from "../infotext.js";
import {
  addResource,
  emptyInfo,
  type GenerationInfo,
  type GeneratorId,
  isRecord,
  lorasInPrompt,
  type ResourceRef,
  toNumber,
  toSeed,
} from "./generation-info.js";
import { parseLenientJson } from "./lenient-json.js";

/** Keys mapped onto GenerationInfo fields; every other key goes to `extra` as written. */
const MAPPED_KEYS = new Set([
  "Steps",
  "Sampler",
  "Schedule type",
  "CFG scale",
  "Seed",
  "Size",
  "Clip skip",
  "Model hash",
  "Model",
  "VAE hash",
  "VAE",
  "Lora hashes",
  "TI hashes",
  "Hashes",
  "Civitai resources",
]);

const SIZE_PATTERN = /^(\d+)x(\d+)$/;

/** `name: hash, name2: hash2` as in `Lora hashes` and `TI hashes`. */
export function parseHashList(value: string | undefined): ResourceRef[] {
  if (!value) return [];
  return value
    .split(",")
    .map((item) => {
      const colon = item.lastIndexOf(":");
      return colon < 0
        ? { name: item.trim() }
        : { name: item.slice(0, colon).trim(), hash: item.slice(colon + 1).trim() };
    })
    .filter((ref) => ref.name);
}

/** Parses infotext into the common shape (A1111 and forks, Civitai's generator, Forge, reForge, ...). */
export function infoFromInfotext(
  text: string,
  generator: GeneratorId,
  raw: Record<string, string>,
): GenerationInfo {
  return infoFromParsedInfotext(parseInfotext(text), generator, raw);
}

export function infoFromParsedInfotext(
  infotext: Infotext,
  generator: GeneratorId,
  raw: Record<string, string>,
): GenerationInfo {
  const info = emptyInfo(generator, raw);
  const value = (key: string) => infotextValue(infotext, key);
  info.prompt = infotext.prompt.trim();
  if (infotext.negativePrompt !== undefined) info.negativePrompt = infotext.negativePrompt.trim();
  info.steps = toNumber(value("Steps"));
  info.sampler = value("Sampler");
  info.scheduler = value("Schedule type");
  info.cfgScale = toNumber(value("CFG scale"));
  info.seed = toSeed(value("Seed"));
  const size = SIZE_PATTERN.exec(value("Size") ?? "");
  if (size) {
    info.width = Number(size[1]);
    info.height = Number(size[2]);
  }
  // A1111: "Missing CLIP skip means it was set to 1 (the default)".
  info.clipSkip = toNumber(value("Clip skip")) ?? 1;
  if (value("Model") !== undefined || value("Model hash") !== undefined) {
    info.model = { name: value("Model"), hash: value("Model hash") };
  }
  if (value("VAE") !== undefined || value("VAE hash") !== undefined) {
    info.vae = { name: value("VAE"), hash: value("VAE hash") };
  }
  for (const lora of lorasInPrompt(info.prompt)) addResource(info.loras, lora);
  for (const lora of parseHashList(value("Lora hashes"))) addResource(info.loras, lora);
  for (const embedding of parseHashList(value("TI hashes"))) addResource(info.embeddings, embedding);
  applyHashesJson(info, value("Hashes"));
  const resources = parseLenientJson(value("Civitai resources") ?? "");
  if (Array.isArray(resources)) info.extra["Civitai resources"] = resources;
  for (const parameter of infotext.parameters) {
    if (!MAPPED_KEYS.has(parameter.key) && !(parameter.key in info.extra)) {
      info.extra[parameter.key] = parameter.value;
    }
  }
  return dropUndefined(info);
}

/** `Hashes: {"model": ..., "vae": ..., "lora:NAME": ..., "embed:NAME": ...}` (Civitai's extension). */
function applyHashesJson(info: GenerationInfo, text: string | undefined): void {
  const hashes = text === undefined ? undefined : parseLenientJson(text);
  if (!isRecord(hashes)) return;
  for (const [key, hash] of Object.entries(hashes)) {
    if (typeof hash !== "string") continue;
    if (key === "model") info.model = { ...info.model, hash: info.model?.hash ?? hash };
    else if (key === "vae") info.vae = { ...info.vae, hash: info.vae?.hash ?? hash };
    else if (key.startsWith("lora:") || key.startsWith("lyco:"))
      addResource(info.loras, { name: key.slice(5), hash });
    else if (key.startsWith("embed:")) addResource(info.embeddings, { name: key.slice(6), hash });
  }
}

export function dropUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    const field = value[key];
    if (field === undefined) delete value[key];
    else if (isRecord(field) && !Array.isArray(field) && key !== "extra" && key !== "raw")
      dropUndefined(field);
  }
  return value;
}
