/** The one shape every generator's metadata is parsed into. */

import { type Air, parseAir } from "./air.js";

export type GeneratorId =
  | "a1111"
  | "civitai"
  | "comfyui"
  | "novelai"
  | "invokeai"
  | "fooocus"
  | "swarmui"
  | "stability-matrix"
  | "hf-space"
  | "tensorart"
  | "easy-diffusion"
  | "drawthings";

/** A model, VAE, LoRA or embedding an image names; `hash` as recorded (AutoV2, AutoV3, SHA256, ...). */
export interface ResourceRef {
  name?: string;
  hash?: string;
  /** LoRA strength (model strength for ComfyUI). */
  weight?: number;
  /** The parts of `name` when it is an AIR (`urn:air:sd1:checkpoint:civitai:4384@128713`), as Civitai's generator names resources. */
  air?: Air;
}

/** A second sampling pass over the upscaled first one (A1111's hires fix, a ComfyUI graph's second sampler). */
export interface HiresSettings {
  /** Upscale factor over the first pass's size. */
  upscale?: number;
  /** Upscale model (file name or AIR), else the resize method (`nearest-exact`, `bislerp`, ...). */
  upscaler?: string;
  /** Size after upscaling, when the graph states it. */
  width?: number;
  height?: number;
  steps?: number;
  denoise?: number;
}

export interface GenerationInfo {
  generator: GeneratorId;
  prompt?: string;
  negativePrompt?: string;
  /** A number, or its decimal text when it exceeds 2^53 (Fooocus seeds do). */
  seed?: number | string;
  steps?: number;
  sampler?: string;
  scheduler?: string;
  cfgScale?: number;
  width?: number;
  height?: number;
  /** 1 = last CLIP layer (A1111 omits it then; ComfyUI writes CLIPSetLastLayer -N). */
  clipSkip?: number;
  model?: ResourceRef;
  vae?: ResourceRef;
  loras: ResourceRef[];
  embeddings: ResourceRef[];
  hires?: HiresSettings;
  /** Where gyoza chose between texts that disagree, said in a sentence (a summary's random seed replaced by the one the graph used). */
  notes?: string[];
  /** Every setting the generator recorded that has no field above, as written. */
  extra: Record<string, unknown>;
  /** The metadata texts this was parsed from, keyed as read (`parameters`, `prompt`, `exif_user_comment`, ...). */
  raw: Record<string, string>;
}

export function emptyInfo(generator: GeneratorId, raw: Record<string, string>): GenerationInfo {
  return { generator, loras: [], embeddings: [], extra: {}, raw };
}

/** A finite number from a number or numeric text, else undefined. */
export function toNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value !== "string" || value.trim() === "") return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

/** Seeds stay exact: numbers up to 2^53, decimal text beyond. */
export function toSeed(value: unknown): number | string | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value !== "string" || !/^-?\d+$/.test(value.trim())) return undefined;
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : value.trim();
}

export function toText(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `<lora:name:0.8>` / `<lyco:name:1>` tags A1111 prompts carry. */
export function lorasInPrompt(prompt: string | undefined): ResourceRef[] {
  if (!prompt) return [];
  const loras: ResourceRef[] = [];
  for (const match of prompt.matchAll(/<(?:lora|lyco):([^:>]+)(?::([^:>]+))?[^>]*>/g)) {
    const weight = toNumber(match[2]);
    loras.push(weight === undefined ? { name: match[1]! } : { name: match[1]!, weight });
  }
  return loras;
}

/** `embedding:name` references in ComfyUI prompts; Civitai's generator writes `embedding:urn:air:...`. */
export function embeddingsInPrompt(prompt: string | undefined): ResourceRef[] {
  if (!prompt) return [];
  return [...prompt.matchAll(/embedding:(urn:air:[^\s,()[\]]+|[^\s,()[\]:]+)/g)].map(([, name]) =>
    namedRef(name!.startsWith("urn:air:") ? name! : name!.replace(/\.(safetensors|pt|bin|ckpt)$/i, "")),
  );
}

/** A reference to `name`, with its AIR parts when the name is an AIR. */
export function namedRef(name: string, weight?: number): ResourceRef {
  const air = parseAir(name);
  return { name, ...(weight === undefined ? {} : { weight }), ...(air ? { air } : {}) };
}

/** Adds `ref` to `list`, merging with an entry of the same name (case-insensitive). */
export function addResource(list: ResourceRef[], ref: ResourceRef): void {
  const name = ref.name?.toLowerCase();
  const same = name === undefined ? undefined : list.find((entry) => entry.name?.toLowerCase() === name);
  if (!same) {
    list.push({ ...ref });
    return;
  }
  same.hash ??= ref.hash;
  same.weight ??= ref.weight;
}

/** Drops the fields a parser left undefined, so JSON output and equality checks see only what was found. */
export function prune(info: GenerationInfo): GenerationInfo {
  for (const key of Object.keys(info) as (keyof GenerationInfo)[])
    if (info[key] === undefined) delete info[key];
  return info;
}

/** Keeps every field of `source` that the generator's parser did not map, under `extra`. */
export function extraExcept(
  info: GenerationInfo,
  source: Record<string, unknown>,
  mapped: readonly string[],
): void {
  for (const [key, value] of Object.entries(source)) if (!mapped.includes(key)) info.extra[key] = value;
}
