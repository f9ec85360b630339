import { basename } from "node:path";
import type { Detection } from "../arch/detect.js";
import type { DType } from "../io/dtype.js";

/**
 * The MUST fields of Stability AI's modelspec 1.0.1 (all values strings), for files gyoza writes.
 * A file's own modelspec keys win over these defaults.
 */
export function modelspecDefaults(
  detection: Detection,
  outputPath: string,
  tensors: readonly { key: string; dtype: DType }[],
): Record<string, string> {
  if (!detection.modelspec) return {};
  const spec: Record<string, string> = {
    "modelspec.sai_model_spec": "1.0.0",
    "modelspec.architecture": detection.modelspec,
    "modelspec.implementation": "sgm",
    "modelspec.title": basename(outputPath).replace(/\.(safetensors|ckpt|pt|pth|bin)$/i, ""),
  };
  if (detection.resolution) spec["modelspec.resolution"] = detection.resolution;
  const unet = tensors.find((t) => t.key.startsWith("model.diffusion_model.") && t.key.endsWith(".weight"));
  const vae = tensors.find((t) => t.key.startsWith("first_stage_model.") && t.key.endsWith(".weight"));
  if (unet) spec["modelspec.unet_dtype"] = unet.dtype.toLowerCase();
  if (vae) spec["modelspec.vae_dtype"] = vae.dtype.toLowerCase();
  return spec;
}
