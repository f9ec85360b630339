import { type Detection, detectArchitecture } from "../arch/detect.js";
import { assertMergeableKeyLayout } from "../arch/layout-conversion.js";
import { GyozaError } from "../errors.js";
import type { Checkpoint } from "../io/tensor.js";
import { isFamily } from "../merge/index.js";

/** Fails before anything is read when the inputs cannot be merged (SD1 + SDXL, a VAE as a model…). */
export function checkCompatible(inputs: readonly { name: string; checkpoint: Checkpoint }[]): Detection {
  let first: { name: string; detection: Detection } | undefined;
  for (const input of inputs) {
    const detection = detectArchitecture(input.checkpoint.tensors);
    assertMergeableKeyLayout(detection, input.checkpoint.path, input.name);
    if (!isFamily(detection.family)) {
      throw new GyozaError(
        "architecture-mismatch",
        `input "${input.name}" is ${detection.name}, not a model to merge`,
        {
          file: input.checkpoint.path,
          fix:
            detection.family === "vae"
              ? "bake a VAE with output.vae: {policy: bake, file: …}"
              : "merge full SD checkpoints",
        },
      );
    }
    if (!first) first = { name: input.name, detection };
    else if (
      first.detection.family !== detection.family ||
      first.detection.id.endsWith("inpaint") !== detection.id.endsWith("inpaint")
    ) {
      throw new GyozaError(
        "architecture-mismatch",
        `cannot merge "${first.name}" (${first.detection.name}) with "${input.name}" (${detection.name})`,
        { file: input.checkpoint.path, fix: "every input of a merge must have the same architecture" },
      );
    }
  }
  if (!first) throw new GyozaError("usage", "a merge needs at least one input");
  return first.detection;
}
