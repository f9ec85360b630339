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

function modelName(model: unknown): string | undefined {
  return isRecord(model) ? (toText(model.name) ?? toText(model.model_name)) : toText(model);
}

/** InvokeAI 3.x+ `invokeai_metadata` JSON. */
export function infoFromInvokeAiMetadata(text: string, raw: Record<string, string>): GenerationInfo {
  const info = emptyInfo("invokeai", raw);
  const meta = parseJsonObject(text) ?? {};
  info.prompt = toText(meta.positive_prompt);
  info.negativePrompt = toText(meta.negative_prompt);
  info.seed = toSeed(meta.seed);
  info.steps = toNumber(meta.steps);
  info.cfgScale = toNumber(meta.cfg_scale);
  info.sampler = toText(meta.scheduler);
  info.width = toNumber(meta.width);
  info.height = toNumber(meta.height);
  info.clipSkip = toNumber(meta.clip_skip);
  if (isRecord(meta.model)) info.model = { name: modelName(meta.model), hash: toText(meta.model.hash) };
  if (meta.vae !== undefined && meta.vae !== null) info.vae = { name: modelName(meta.vae) };
  if (Array.isArray(meta.loras)) {
    for (const lora of meta.loras) {
      if (!isRecord(lora)) continue;
      const model = lora.model ?? lora.lora;
      addResource(info.loras, {
        name: modelName(model),
        hash: isRecord(model) ? toText(model.hash) : undefined,
        weight: toNumber(lora.weight),
      });
    }
  }
  extraExcept(info, meta, [
    "positive_prompt",
    "negative_prompt",
    "seed",
    "steps",
    "cfg_scale",
    "scheduler",
    "width",
    "height",
    "model",
    "vae",
    "loras",
    "clip_skip",
  ]);
  return prune(info);
}

/** InvokeAI 2.x `Dream`: `"prompt [negative]" -s 50 -S 42 -W 512 -H 768 -C 7.5 -A k_lms`. */
export function infoFromInvokeAiDream(text: string, raw: Record<string, string>): GenerationInfo {
  const info = emptyInfo("invokeai", raw);
  const quoted = /^"((?:[^"\\]|\\.)*)"(.*)$/s.exec(text.trim());
  const promptText = quoted ? quoted[1]! : "";
  const flags = quoted ? quoted[2]! : text;
  const negatives = [...promptText.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]!.trim());
  info.prompt = promptText.replace(/\[[^\]]*\]/g, "").trim();
  if (negatives.length > 0) info.negativePrompt = negatives.join(", ");
  const options = new Map<string, string>();
  for (const match of flags.matchAll(/(?:^|\s)-(\w+)\s+([^\s-][^\s]*)/g)) options.set(match[1]!, match[2]!);
  info.steps = toNumber(options.get("s"));
  info.seed = toSeed(options.get("S"));
  info.width = toNumber(options.get("W"));
  info.height = toNumber(options.get("H"));
  info.cfgScale = toNumber(options.get("C"));
  info.sampler = options.get("A");
  for (const [key, value] of options)
    if (!["s", "S", "W", "H", "C", "A"].includes(key)) info.extra[key] = value;
  return prune(info);
}

/** InvokeAI 2.x `sd-metadata`: `{model_weights, model_hash, image: {prompt: [{prompt, weight}], seed, steps, ...}}`. */
export function infoFromInvokeAiLegacy(text: string, raw: Record<string, string>): GenerationInfo {
  const info = emptyInfo("invokeai", raw);
  const meta = parseJsonObject(text) ?? {};
  const image = isRecord(meta.image) ? meta.image : {};
  const prompts = Array.isArray(image.prompt) ? image.prompt.filter(isRecord) : [];
  const promptText =
    prompts.map((p) => toText(p.prompt)).find((p) => p !== undefined) ?? toText(image.prompt);
  if (promptText !== undefined) {
    // Legacy InvokeAI keeps the negative prompt in [brackets] inside the prompt.
    const negatives = [...promptText.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]!.trim());
    info.prompt = promptText.replace(/\[[^\]]*\]/g, "").trim();
    if (negatives.length > 0) info.negativePrompt = negatives.join(", ");
  }
  info.seed = toSeed(image.seed);
  info.steps = toNumber(image.steps);
  info.cfgScale = toNumber(image.cfg_scale);
  info.sampler = toText(image.sampler);
  info.width = toNumber(image.width);
  info.height = toNumber(image.height);
  if (meta.model_weights !== undefined || meta.model_hash !== undefined) {
    info.model = { name: toText(meta.model_weights), hash: toText(meta.model_hash) };
  }
  return prune(info);
}
