import { decodeToFloat32 } from "../io/float-convert.js";
import { readTensorBytes } from "../io/read-tensor.js";
import type { Checkpoint } from "../io/tensor.js";
import type { Detection } from "./detect.js";

/**
 * SD 2.x comes as 512-base (epsilon) and 768-v (v-prediction) with identical keys and shapes. The
 * file's own `modelspec.prediction_type` decides when present; otherwise ComfyUI's heuristic
 * (comfy/supported_models.py, SD20.model_type): the output block's norm1 bias has a population
 * standard deviation above 0.09 in v-prediction models.
 */
export const V_PREDICTION_NORM_KEY =
  "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias";
const V_PREDICTION_STD_THRESHOLD = 0.09;

export async function refinePrediction(detection: Detection, checkpoint: Checkpoint): Promise<Detection> {
  if (detection.id !== "sd2") return detection;
  const declared = checkpoint.metadata["modelspec.prediction_type"];
  let vPrediction: boolean | undefined;
  let reason: string;
  if (declared === "v" || declared === "epsilon") {
    vPrediction = declared === "v";
    reason = `modelspec.prediction_type is "${declared}"`;
  } else {
    const tensor = checkpoint.tensors.get(V_PREDICTION_NORM_KEY);
    if (!tensor || !["F16", "BF16", "F32", "F64"].includes(tensor.dtype)) return detection;
    const values = decodeToFloat32(await readTensorBytes(tensor), tensor.dtype);
    const std = populationStd(values);
    vPrediction = std > V_PREDICTION_STD_THRESHOLD;
    reason = `${V_PREDICTION_NORM_KEY} std ${std.toFixed(4)} ${vPrediction ? ">" : "≤"} ${V_PREDICTION_STD_THRESHOLD} (ComfyUI's v-prediction heuristic)`;
  }
  if (!vPrediction)
    return {
      ...detection,
      name: `${detection.name} (512-base, epsilon)`,
      evidence: [...detection.evidence, reason],
    };
  return {
    ...detection,
    id: "sd2-768-v",
    name: "Stable Diffusion 2.x 768-v (v-prediction)",
    modelspec: "stable-diffusion-v2-768-v",
    resolution: "768x768",
    evidence: [...detection.evidence, reason],
  };
}

function populationStd(values: Float32Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  return Math.sqrt(squares / values.length);
}
