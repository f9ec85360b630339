import { detectArchitecture } from "../arch/detect.js";
import type { DType } from "../io/dtype.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { Checkpoint } from "../io/tensor.js";
import { loadKernel } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { ProgressListener } from "../progress.js";
import { BufferPool } from "./buffer-pool.js";
import { convertedChunks } from "./convert-bytes.js";
import { modelspecDefaults } from "./modelspec.js";
import { assertNotOverwritingInput, type FinishReport, planFinishedTensors } from "./output-plan.js";
import { type OutputTensor, outputFormatOf, writeOutput } from "./write-output.js";

export interface ConvertOptions {
  input: string;
  output: string;
  dtype?: DType;
  prune?: boolean;
  /** A VAE file to bake in (.ckpt, .safetensors, .vae.pt …). */
  bakeVae?: string;
  fixClip?: boolean;
  kernel?: MergeKernel;
  onProgress?: ProgressListener;
}

export interface ConvertResult extends FinishReport {
  output: string;
  format: "safetensors" | "ckpt";
  tensors: number;
  bytes: number;
  /** sha256 of the written data section (AutoV3), for safetensors outputs. */
  dataSha256?: string;
}

/**
 * ckpt ⇄ safetensors, with optional precision change, pruning, VAE baking and position_ids repair.
 * With no options every state-dict tensor is written unchanged (views materialised contiguously).
 */
export async function convertCheckpoint(options: ConvertOptions): Promise<ConvertResult> {
  const format = outputFormatOf(options.output);
  await assertNotOverwritingInput(options.output, {
    model: options.input,
    ...(options.bakeVae ? { "baked VAE": options.bakeVae } : {}),
  });
  const kernel = options.kernel ?? (await loadKernel());
  const opened: Checkpoint[] = [];
  const pool = new BufferPool(undefined, kernel);
  try {
    const model = await openCheckpoint(options.input);
    opened.push(model);
    const vae = options.bakeVae ? await openCheckpoint(options.bakeVae) : undefined;
    if (vae) opened.push(vae);
    const detection = detectArchitecture(model.tensors);
    const { planned, report } = planFinishedTensors(
      model.tensors,
      { ...options, ...(vae ? { bakeVae: vae } : { bakeVae: undefined }) },
      detection,
    );
    const tensors: OutputTensor[] = planned.map(({ key, source, dtype }) => ({
      key,
      dtype,
      shape: source.shape,
      chunks: () => convertedChunks(source, dtype, kernel, pool),
    }));
    const metadata =
      format === "safetensors"
        ? { ...modelspecDefaults(detection, options.output, planned), ...model.metadata }
        : undefined;
    const written = await writeOutput(options.output, tensors, {
      format,
      ...(metadata ? { metadata } : {}),
      task: `convert → ${options.output}`,
      release: (chunk) => pool.release(chunk),
      blockMemory: kernel,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    return {
      output: options.output,
      format,
      tensors: tensors.length,
      bytes: written.bytes,
      ...(written.dataSha256 ? { dataSha256: written.dataSha256 } : {}),
      ...report,
    };
  } finally {
    pool.dispose(); // the kernel's memory back, for its next job
    await Promise.all(opened.map((c) => c.close()));
  }
}
