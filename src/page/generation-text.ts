import { formatInfotext, type GenerationInfo, type InfotextParameter } from "../image/index.js";

/**
 * The A1111 infotext for "copy generation data": the image's own `parameters` text when it has one
 * (exactly as written, so pasting it into A1111's PNG Info gives back every setting), else one built
 * from the parsed fields in A1111's layout.
 */
export function infotextOf(info: GenerationInfo): string {
  const written = info.raw?.parameters;
  if (written !== undefined && written.trim() !== "") return written;
  const parameters: InfotextParameter[] = [];
  const add = (key: string, value: string | number | undefined): void => {
    if (value !== undefined && value !== "") parameters.push({ key, value: String(value) });
  };
  add("Steps", info.steps);
  add("Sampler", info.sampler);
  add("Schedule type", info.scheduler);
  add("CFG scale", info.cfgScale);
  add("Seed", info.seed);
  if (info.width !== undefined && info.height !== undefined) add("Size", `${info.width}x${info.height}`);
  add("Model hash", info.model?.hash);
  add("Model", info.model?.name);
  add("VAE", info.vae?.name);
  if (info.clipSkip !== undefined && info.clipSkip !== 1) add("Clip skip", info.clipSkip);
  return formatInfotext({ prompt: info.prompt ?? "", negativePrompt: info.negativePrompt, parameters });
}

/** The fields the image dialog lists, in the order Civitai's image panel shows them. */
export function generationFields(info: GenerationInfo): [string, string][] {
  const fields: [string, string | number | undefined][] = [
    ["Generator", info.generator],
    ["Model", [info.model?.name, info.model?.hash].filter(Boolean).join(" · ") || undefined],
    ["VAE", [info.vae?.name, info.vae?.hash].filter(Boolean).join(" · ") || undefined],
    ["Sampler", [info.sampler, info.scheduler].filter(Boolean).join(" ") || undefined],
    ["Steps", info.steps],
    ["CFG scale", info.cfgScale],
    ["Seed", info.seed],
    [
      "Size",
      info.width !== undefined && info.height !== undefined ? `${info.width}×${info.height}` : undefined,
    ],
    ["Clip skip", info.clipSkip],
    ["LoRAs", (info.loras ?? []).map(resourceText).join(", ") || undefined],
    ["Embeddings", (info.embeddings ?? []).map(resourceText).join(", ") || undefined],
  ];
  return fields
    .filter((field): field is [string, string | number] => field[1] !== undefined && field[1] !== "")
    .map(([key, value]) => [key, String(value)]);
}

function resourceText(resource: { name?: string; hash?: string; weight?: number }): string {
  const weight = resource.weight !== undefined ? ` × ${resource.weight}` : "";
  const hash = resource.hash ? ` (${resource.hash})` : "";
  return `${resource.name ?? "?"}${weight}${hash}`;
}
