import { dtypeBytes } from "../io/dtype.js";
import { decodeToFloat32 } from "../io/float-convert.js";
import { isContiguous, readTensorBytes, readTensorRange } from "../io/read-tensor.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { ProgressListener } from "../progress.js";
import { isAnalysableDType } from "./aligned-chunks.js";
import type { AnalysisKey } from "./analysis-keys.js";

/** Elements sampled per model by default: 4 MiB of f32, enough for per-block estimates to a few 1e-3. */
export const DEFAULT_SAMPLE_ELEMENTS = 1 << 20;
/** Contiguous elements per sampled run: a row-sized read, so sampling costs few seeks. */
const SAMPLE_RUN_ELEMENTS = 512;

/** Where to sample: runs of elements of each key, spread evenly over the tensor. */
export interface SamplePlan {
  readonly keys: readonly {
    key: AnalysisKey;
    runs: readonly [begin: number, end: number][];
    offset: number;
  }[];
  /** Total sampled elements (the length of every model's sample vector). */
  readonly length: number;
}

/** Spreads `budget` elements over the keys in proportion to their sizes (small keys are taken whole). */
export function samplePlan(keys: readonly AnalysisKey[], budget = DEFAULT_SAMPLE_ELEMENTS): SamplePlan {
  const total = keys.reduce((sum, key) => sum + key.elements, 0);
  const share = total > 0 ? Math.min(1, budget / total) : 0;
  let offset = 0;
  const planned = keys.map((key) => {
    const want = Math.min(
      key.elements,
      Math.max(Math.min(key.elements, SAMPLE_RUN_ELEMENTS), Math.ceil(key.elements * share)),
    );
    const runCount = Math.max(1, Math.ceil(want / SAMPLE_RUN_ELEMENTS));
    const runLength = Math.ceil(want / runCount);
    const stride = key.elements / runCount;
    const runs: [number, number][] = [];
    for (let i = 0; i < runCount; i++) {
      const begin = Math.min(key.elements - runLength, Math.floor(i * stride));
      runs.push([begin, begin + runLength]);
    }
    const entry = { key, runs, offset };
    offset += runCount * runLength;
    return entry;
  });
  return { keys: planned, length: offset };
}

function decode(
  bytes: Uint8Array,
  dtype: StoredTensor["dtype"],
  kernel: MergeKernel,
  out: Float32Array,
): void {
  if (dtype === "F16" || dtype === "BF16" || dtype === "F32") kernel.toFloat32(bytes, dtype, out);
  else decodeToFloat32(bytes, dtype, out);
}

/**
 * One pass over a model reading only the planned runs, decoded to f32. Keys the model lacks (or
 * holds with another size or a non-float dtype) come back as NaN, which the fits skip.
 */
export async function readSamples(
  model: Checkpoint,
  plan: SamplePlan,
  kernel: MergeKernel,
  onProgress: ProgressListener = () => {},
): Promise<Float32Array> {
  const out = new Float32Array(plan.length).fill(Number.NaN);
  for (const { key, runs, offset } of plan.keys) {
    const tensor = model.tensors.get(key.key);
    if (!tensor || !isAnalysableDType(tensor.dtype)) continue;
    const size = dtypeBytes(tensor.dtype);
    if (tensor.byteLength !== key.elements * size) continue;
    const strided = tensor.strides !== null && !isContiguous(tensor.shape, tensor.strides);
    const whole = strided ? await readTensorBytes(tensor) : undefined;
    let at = offset;
    for (const [begin, end] of runs) {
      const bytes = whole
        ? whole.subarray(begin * size, end * size)
        : await readTensorRange(tensor, begin * size, end * size);
      decode(bytes, tensor.dtype, kernel, out.subarray(at, at + end - begin));
      at += end - begin;
      onProgress({ type: "advance", bytes: bytes.byteLength, item: key.key });
    }
  }
  return out;
}
