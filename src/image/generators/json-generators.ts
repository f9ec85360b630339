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

function pairOf(text: unknown): [number, number] | undefined {
  const match = /(\d+)\s*[x×,]\s*(\d+)/.exec(String(text ?? ""));
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** Fooocus `parameters` JSON (metadata_scheme "fooocus"). */
export function infoFromFooocus(text: string, raw: Record<string, string>): GenerationInfo {
  const meta = parseJsonObject(text) ?? {};
  const info = emptyInfo("fooocus", raw);
  info.prompt = toText(meta.prompt);
  info.negativePrompt = toText(meta.negative_prompt);
  info.seed = toSeed(meta.seed);
  info.steps = toNumber(meta.steps);
  info.cfgScale = toNumber(meta.guidance_scale);
  info.sampler = toText(meta.sampler);
  info.scheduler = toText(meta.scheduler);
  // Fooocus records `resolution` as str((width, height)).
  const size = pairOf(meta.resolution);
  if (size) [info.width, info.height] = size;
  info.clipSkip = toNumber(meta.clip_skip);
  if (meta.base_model !== undefined)
    info.model = { name: toText(meta.base_model), hash: toText(meta.base_model_hash) };
  if (typeof meta.vae === "string" && !meta.vae.startsWith("Default")) info.vae = { name: meta.vae };
  if (Array.isArray(meta.loras)) {
    for (const lora of meta.loras) {
      if (Array.isArray(lora))
        addResource(info.loras, { name: toText(lora[0]), weight: toNumber(lora[1]), hash: toText(lora[2]) });
    }
  }
  extraExcept(info, meta, [
    "prompt",
    "negative_prompt",
    "seed",
    "steps",
    "guidance_scale",
    "sampler",
    "scheduler",
    "resolution",
    "clip_skip",
    "base_model",
    "base_model_hash",
    "vae",
    "loras",
  ]);
  return prune(info);
}

/** SwarmUI `sui_image_params` / `sui_models` JSON (PNG `parameters`, JPEG UserComment). */
export function infoFromSwarmUi(text: string, raw: Record<string, string>): GenerationInfo {
  const meta = parseJsonObject(text) ?? {};
  const params = isRecord(meta.sui_image_params) ? meta.sui_image_params : {};
  const info = emptyInfo("swarmui", raw);
  info.prompt = toText(params.prompt);
  info.negativePrompt = toText(params.negativeprompt);
  info.seed = toSeed(params.seed);
  info.steps = toNumber(params.steps);
  info.cfgScale = toNumber(params.cfgscale);
  info.sampler = toText(params.sampler);
  info.scheduler = toText(params.scheduler);
  info.width = toNumber(params.width);
  info.height = toNumber(params.height);
  const clipStop = toNumber(params.clipstopatlayer);
  if (clipStop !== undefined) info.clipSkip = Math.abs(clipStop);
  const models = Array.isArray(meta.sui_models) ? meta.sui_models.filter(isRecord) : [];
  const hashOf = (param: string) => toText(models.find((m) => m.param === param)?.hash)?.replace(/^0x/i, "");
  if (params.model !== undefined) info.model = { name: toText(params.model), hash: hashOf("model") };
  if (typeof params.vae === "string") info.vae = { name: params.vae, hash: hashOf("vae") };
  const loras = Array.isArray(params.loras) ? params.loras : [];
  const weights = Array.isArray(params.loraweights) ? params.loraweights : [];
  loras.forEach((name, i) => {
    addResource(info.loras, { name: toText(name), weight: toNumber(weights[i]) });
  });
  for (const model of models) {
    if (model.param === "loras")
      addResource(info.loras, {
        name: toText(model.name)?.replace(/\.safetensors$/, ""),
        hash: toText(model.hash)?.replace(/^0x/i, ""),
      });
  }
  extraExcept(info, params, [
    "prompt",
    "negativeprompt",
    "seed",
    "steps",
    "cfgscale",
    "sampler",
    "scheduler",
    "width",
    "height",
    "model",
    "vae",
    "loras",
    "loraweights",
    "clipstopatlayer",
  ]);
  return prune(info);
}

/** Gradio apps (Hugging Face Spaces such as Animagine's) that write a JSON `parameters`. */
export function infoFromGradioJson(text: string, raw: Record<string, string>): GenerationInfo {
  const meta = parseJsonObject(text) ?? {};
  const info = emptyInfo("hf-space", raw);
  info.prompt = toText(meta.prompt);
  info.negativePrompt = toText(meta.negative_prompt);
  info.seed = toSeed(meta.seed);
  info.steps = toNumber(meta.num_inference_steps ?? meta.steps);
  info.cfgScale = toNumber(meta.guidance_scale ?? meta.cfg_scale);
  info.sampler = toText(meta.sampler);
  const size = pairOf(meta.resolution);
  if (size) [info.width, info.height] = size;
  else {
    info.width = toNumber(meta.width);
    info.height = toNumber(meta.height);
  }
  if (meta.Model !== undefined || meta["Model hash"] !== undefined) {
    info.model = { name: toText(meta.Model), hash: toText(meta["Model hash"]) };
  }
  extraExcept(info, meta, [
    "prompt",
    "negative_prompt",
    "seed",
    "num_inference_steps",
    "steps",
    "guidance_scale",
    "cfg_scale",
    "sampler",
    "resolution",
    "width",
    "height",
    "Model",
    "Model hash",
  ]);
  return prune(info);
}

/** Stability Matrix `parameters-json` (next to an A1111-style `parameters` and a ComfyUI `prompt`). */
export function infoFromStabilityMatrix(text: string, raw: Record<string, string>): GenerationInfo {
  const meta = parseJsonObject(text) ?? {};
  const info = emptyInfo("stability-matrix", raw);
  info.prompt = toText(meta.PositivePrompt);
  info.negativePrompt = toText(meta.NegativePrompt);
  info.seed = toSeed(meta.Seed);
  info.steps = toNumber(meta.Steps);
  info.cfgScale = toNumber(meta.CfgScale);
  info.sampler = toText(meta.Sampler);
  info.width = toNumber(meta.Width);
  info.height = toNumber(meta.Height);
  if (meta.ModelName !== undefined || meta.ModelHash !== undefined) {
    info.model = { name: toText(meta.ModelName), hash: toText(meta.ModelHash) };
  }
  return prune(info);
}

/** Ruined Fooocus: a JSON `parameters` with `"software": "RuinedFooocus"` and its own key names. */
export function infoFromRuinedFooocus(
  meta: Record<string, unknown>,
  raw: Record<string, string>,
): GenerationInfo {
  const info = emptyInfo("fooocus", raw);
  info.prompt = toText(meta.Prompt);
  info.negativePrompt = toText(meta.Negative);
  info.seed = toSeed(meta.seed);
  info.steps = toNumber(meta.steps);
  info.cfgScale = toNumber(meta.cfg);
  info.sampler = toText(meta.sampler_name);
  info.scheduler = toText(meta.scheduler);
  info.width = toNumber(meta.width);
  info.height = toNumber(meta.height);
  info.clipSkip = toNumber(meta.clip_skip);
  if (meta.base_model_name !== undefined)
    info.model = { name: toText(meta.base_model_name), hash: toText(meta.base_model_hash) };
  if (Array.isArray(meta.loras)) {
    for (const lora of meta.loras)
      if (isRecord(lora)) addResource(info.loras, { name: toText(lora.name), weight: toNumber(lora.weight) });
  }
  info.extra.software = meta.software;
  return prune(info);
}
