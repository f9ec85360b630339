import { type Detection, detectArchitecture } from "../arch/detect.js";
import { embeddingForSafetensors } from "../arch/embedding.js";
import type { DType } from "../io/dtype.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import { loadKernel, nativeCachedBytes, nativeReadAhead } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { ProgressListener } from "../progress.js";
import { BufferPool } from "../stream/buffer-pool.js";
import { convertedChunks } from "../stream/convert-bytes.js";
import { prepareInputReads } from "../stream/input-reads.js";
import { convertedReads } from "../stream/prefetch-plan.js";
import { inputOrderOf, type OutputTensor, outputFormatOf, writeOutput } from "../stream/write-output.js";
import { modelspecDefaults } from "./modelspec.js";
import { assertNotOverwritingInput, type FinishReport, planFinishedTensors } from "./output-plan.js";
import { type RelayoutReport, relayoutTensors } from "./relayout-tensors.js";

export interface ConvertOptions {
  input: string;
  output: string;
  dtype?: DType;
  prune?: boolean;
  /** A VAE file to bake in (.ckpt, .safetensors, .vae.pt …). */
  bakeVae?: string;
  fixClip?: boolean;
  /**
   * Rename the keys to this key layout first: "ldm" (the single-file layout merges read: LDM for
   * SD 1.x, SGM for SDXL) from the kohya layout. A file already in it is left as it is.
   */
  layout?: string;
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
  /** What `layout` renamed, when the file was in another key layout. */
  relayout?: RelayoutReport;
}

/**
 * ckpt ⇄ safetensors, with optional key layout change, precision change, pruning, VAE baking and
 * position_ids repair. With no options every state-dict tensor is written unchanged (views
 * materialised contiguously); a layout change renames keys and only reshapes (same bytes), transposes
 * or joins tensors where the target layout stores them so.
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
    // An A1111 .pt embedding goes into A1111's safetensors layout (emb_params, its training record as metadata).
    const embedding = format === "safetensors" ? embeddingForSafetensors(model) : undefined;
    let tensors: ReadonlyMap<string, StoredTensor> = embedding?.tensors ?? model.tensors;
    let detection = detectArchitecture(tensors);
    const relayout = options.layout
      ? relayoutTensors(tensors, detection, options.layout, options.input)
      : undefined;
    if (relayout) {
      tensors = relayout.tensors;
      detection = detectArchitecture(tensors);
    }
    const { planned, report } = planFinishedTensors(
      tensors,
      { ...options, ...(vae ? { bakeVae: vae } : { bakeVae: undefined }) },
      detection,
    );
    const outputs: OutputTensor[] = planned.map(({ key, source, dtype }) => ({
      key,
      dtype,
      shape: source.shape,
      chunks: () => convertedChunks(source, dtype, kernel, pool),
    }));
    const metadata =
      format === "safetensors"
        ? {
            ...outputMetadata(model, detection, options.output, planned, relayout !== undefined),
            ...embedding?.metadata,
          }
        : undefined;
    const written = await writeOutput(options.output, outputs, {
      format,
      ...(metadata ? { metadata } : {}),
      task: `convert → ${options.output}`,
      release: (chunk) => pool.release(chunk),
      blockMemory: kernel,
      inputOrder: inputOrderOf(tensors),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      // cold inputs read front to back past the page cache; a .ckpt written as safetensors is read
      // out of its order: prefetched in the output's order
      prepareReads: async (order) => {
        const sourceOf = new Map(planned.map(({ key, source }) => [key, source]));
        const files = new Map(opened.map((checkpoint) => [checkpoint.path, checkpoint.tensors]));
        const cachedBytes = nativeCachedBytes();
        const readAhead = nativeReadAhead();
        const reads = await prepareInputReads(convertedReads(sourceOf, files, order), {
          directCandidates: opened,
          ...(cachedBytes ? { cachedBytes } : {}),
          ...(readAhead ? { readAhead } : {}),
        });
        return reads.prefetches;
      },
    });
    return {
      output: options.output,
      format,
      tensors: outputs.length,
      bytes: written.bytes,
      ...(written.dataSha256 ? { dataSha256: written.dataSha256 } : {}),
      ...report,
      ...(relayout ? { relayout: relayout.report } : {}),
    };
  } finally {
    pool.dispose(); // the kernel's memory back, for its next job
    await Promise.all(opened.map((c) => c.close()));
  }
}

/**
 * The file's own metadata over modelspec defaults; after a layout change the implementation is the
 * new layout's, whatever the file said (a kohya file may declare "diffusers").
 */
function outputMetadata(
  model: Checkpoint,
  detection: Detection,
  output: string,
  planned: readonly { key: string; dtype: DType }[],
  relaidOut: boolean,
): Record<string, string> {
  const defaults = modelspecDefaults(detection, output, planned);
  const metadata = { ...defaults, ...model.metadata };
  const implementation = defaults["modelspec.implementation"];
  if (relaidOut && implementation) metadata["modelspec.implementation"] = implementation;
  return metadata;
}
