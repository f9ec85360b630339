import { GyozaError } from "../errors.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import { detectArchitecture } from "./detect.js";

export const VAE_PREFIX = "first_stage_model.";
const STANDALONE_VAE_PARTS = ["encoder.", "decoder.", "quant_conv.", "post_quant_conv."];

/**
 * The tensors of a VAE file as they sit inside a checkpoint: a standalone VAE (kl-f8-anime2.ckpt,
 * `*.vae.safetensors`) has its keys mapped under `first_stage_model.`, training leftovers (`loss.*`,
 * `model_ema.*`) dropped; a full checkpoint gives its own `first_stage_model.*`.
 */
export function vaeTensorsForBaking(vae: Checkpoint): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  const embedded = [...vae.tensors.keys()].some((key) => key.startsWith(VAE_PREFIX));
  for (const [key, tensor] of vae.tensors) {
    if (embedded) {
      if (key.startsWith(VAE_PREFIX)) out.set(key, tensor);
    } else if (STANDALONE_VAE_PARTS.some((part) => key.startsWith(part))) {
      out.set(VAE_PREFIX + key, tensor);
    }
  }
  if (out.size === 0) {
    const detection = detectArchitecture(vae.tensors);
    throw new GyozaError("usage", `holds no VAE weights (it looks like: ${detection.name})`, {
      file: vae.path,
      fix: "pass a VAE file (encoder.*/decoder.* keys) or a checkpoint with first_stage_model.* keys",
    });
  }
  return out;
}

/** Checks the VAE fits the model: every VAE key the model has must exist with the same shape. */
export function checkVaeFits(
  model: ReadonlyMap<string, StoredTensor>,
  vae: ReadonlyMap<string, StoredTensor>,
  vaePath: string,
): void {
  for (const [key, tensor] of vae) {
    const existing = model.get(key);
    if (existing && existing.shape.join(",") !== tensor.shape.join(",")) {
      throw new GyozaError(
        "architecture-mismatch",
        `VAE tensor ${key} has shape [${tensor.shape}] but the model's is [${existing.shape}]`,
        {
          file: vaePath,
          fix: "bake a VAE made for this model family (kl-f8 for SD 1.x/2.x, the SDXL VAE for SDXL)",
        },
      );
    }
  }
}
