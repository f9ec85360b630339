import { type LoraBaseId, loraBase, moduleTarget } from "../lora-key-map.js";
import type { LoraModuleSpec } from "./build-lora.js";

/**
 * LoRA modules with these kohya names, each shaped like the weight of `model` it changes (a rank-4
 * LoRA for a micro synthetic model has micro shapes): what a test or bench needs to bake a LoRA into a
 * model it generated. A name that maps to no key of the model throws.
 */
export function modulesFitting(
  names: readonly string[],
  model: ReadonlyMap<string, { readonly shape: readonly number[] }>,
  base: LoraBaseId,
  options: { rank?: number; alpha?: number | null } = {},
): LoraModuleSpec[] {
  return names.map((name) => {
    const target = moduleTarget(name, loraBase(base));
    const shape = target && model.get(target.key)?.shape;
    if (!target || !shape) throw new Error(`${name} changes no weight of the model`);
    const out = target.rows ? shape[0]! / target.rows.of : shape[0]!;
    return {
      name,
      out,
      in: shape[1]!,
      ...(shape.length === 4 ? { kernel: [shape[2]!, shape[3]!] as [number, number] } : {}),
      ...(options.rank !== undefined ? { rank: options.rank } : {}),
      ...(options.alpha !== undefined ? { alpha: options.alpha } : {}),
    };
  });
}

/** The kohya module name of an ldm/sgm weight key, as LoRAs named after the ldm UNet write it. */
export function ldmModuleName(key: string): string {
  const stem = key.replace(/\.weight$/, "").replaceAll(".", "_");
  if (key.startsWith("model.diffusion_model."))
    return `lora_unet_${stem.slice("model_diffusion_model_".length)}`;
  if (key.startsWith("cond_stage_model.transformer."))
    return `lora_te_${stem.slice("cond_stage_model_transformer_".length)}`;
  throw new Error(`no kohya module name for ${key}`);
}
