import { VAE_PREFIX } from "../arch/vae.js";
import { GyozaError } from "../errors.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { ProgressListener } from "../progress.js";
import { BufferPool } from "../stream/buffer-pool.js";
import { convertedChunks } from "../stream/convert-bytes.js";
import { type OutputTensor, writeOutput } from "../stream/write-output.js";

/** VAE training leftovers a standalone VAE file does not need (as `vaeTensorsForBaking` drops them). */
const DROPPED_VAE_PARTS = ["loss.", "model_ema."];

/**
 * Writes the VAE baked into a checkpoint (`first_stage_model.*`) as a standalone VAE safetensors
 * file (`encoder.*`, `decoder.*`, `quant_conv.*`, `post_quant_conv.*`), tensors unchanged: the
 * layout A1111's models/VAE folder and `--bake-vae` read.
 */
export async function extractBakedVae(
  checkpointPath: string,
  output: string,
  options: { kernel: MergeKernel; onProgress?: ProgressListener },
): Promise<{ tensors: number; bytes: number }> {
  const checkpoint = await openCheckpoint(checkpointPath);
  const pool = new BufferPool(undefined, options.kernel);
  try {
    const outputs: OutputTensor[] = [];
    for (const [key, tensor] of checkpoint.tensors) {
      if (!key.startsWith(VAE_PREFIX)) continue;
      const name = key.slice(VAE_PREFIX.length);
      if (DROPPED_VAE_PARTS.some((part) => name.startsWith(part))) continue;
      outputs.push({
        key: name,
        dtype: tensor.dtype,
        shape: tensor.shape,
        chunks: () => convertedChunks(tensor, tensor.dtype, options.kernel, pool),
      });
    }
    if (outputs.length === 0) {
      throw new GyozaError("usage", "has no baked VAE (no first_stage_model.* tensors) to extract", {
        file: checkpointPath,
        fix: "give the version's VAE file instead",
      });
    }
    const written = await writeOutput(output, outputs, {
      format: "safetensors",
      task: `extract VAE → ${output}`,
      release: (chunk) => pool.release(chunk),
      blockMemory: options.kernel,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    return { tensors: outputs.length, bytes: written.bytes };
  } finally {
    pool.dispose();
    await checkpoint.close();
  }
}
