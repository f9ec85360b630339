import { GyozaError } from "../errors.js";
import { dtypeBytes, elementCount } from "../io/dtype.js";
import { decodeToFloat32 } from "../io/float-convert.js";
import { isContiguous, readTensorBytes, readTensorRange } from "../io/read-tensor.js";
import type { StoredTensor } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { ProgressListener } from "../progress.js";

/** Elements per chunk: 4 MiB of f32 per model, enough for sequential reads, small enough to bound memory. */
export const ANALYSIS_CHUNK_ELEMENTS = 1 << 20;
/** Chunks read ahead of the arithmetic, so disk reads overlap with decoding and dot products. */
const READ_AHEAD_CHUNKS = 3;

/** The same element range of one key in every model, decoded to f32. */
export interface AlignedChunk {
  readonly keyIndex: number;
  readonly values: readonly Float32Array[];
}

/** One key to stream: its tensor in each model (same shape, any float dtype). */
export interface AlignedKey {
  readonly key: string;
  readonly tensors: readonly StoredTensor[];
}

/** True for the dtypes the analysis decodes (F64 through float-convert, the rest through the kernel). */
export function isAnalysableDType(dtype: string): boolean {
  return dtype === "F16" || dtype === "BF16" || dtype === "F32" || dtype === "F64";
}

async function readElements(tensor: StoredTensor, begin: number, end: number): Promise<Uint8Array> {
  const size = dtypeBytes(tensor.dtype);
  if (tensor.strides && !isContiguous(tensor.shape, tensor.strides)) {
    // Views are rare and small in real checkpoints: gather the whole tensor, then slice.
    return (await readTensorBytes(tensor)).subarray(begin * size, end * size);
  }
  return readTensorRange(tensor, begin * size, end * size);
}

function decode(bytes: Uint8Array, tensor: StoredTensor, kernel: MergeKernel): Float32Array {
  const count = bytes.byteLength / dtypeBytes(tensor.dtype);
  const out = new Float32Array(count);
  if (tensor.dtype === "F64") decodeToFloat32(bytes, "F64", out);
  else if (tensor.dtype === "F16" || tensor.dtype === "BF16" || tensor.dtype === "F32")
    kernel.toFloat32(bytes, tensor.dtype, out);
  else throw new GyozaError("usage", `cannot analyse ${tensor.dtype} tensors`, { path: tensor.key });
  return out;
}

async function* produceChunks(
  keys: readonly AlignedKey[],
  kernel: MergeKernel,
  chunkElements: number,
  onProgress: ProgressListener,
): AsyncGenerator<AlignedChunk> {
  for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
    const { key, tensors } = keys[keyIndex]!;
    const count = elementCount(tensors[0]!.shape);
    for (let begin = 0; begin < count; begin += chunkElements) {
      const end = Math.min(count, begin + chunkElements);
      const bytes = await Promise.all(tensors.map((tensor) => readElements(tensor, begin, end)));
      const values = bytes.map((chunk, i) => decode(chunk, tensors[i]!, kernel));
      onProgress({
        type: "advance",
        bytes: bytes.reduce((sum, chunk) => sum + chunk.byteLength, 0),
        item: key,
      });
      yield { keyIndex, values };
    }
  }
}

/** Starts `promise`-returning work up to `depth` items ahead (bounded memory: `depth` chunks in flight). */
async function* readAhead<T>(source: AsyncGenerator<T>, depth: number): AsyncGenerator<T> {
  const queue: Promise<IteratorResult<T>>[] = [];
  const pull = () => {
    const next = source.next();
    next.catch(() => {});
    queue.push(next);
  };
  try {
    for (let i = 0; i < depth; i++) pull();
    while (true) {
      const result = await queue.shift()!;
      if (result.done) return;
      pull();
      yield result.value;
    }
  } finally {
    await Promise.allSettled(queue);
    await source.return(undefined);
  }
}

/**
 * Streams every key's tensors from several models side by side, element range by element range,
 * decoded to f32: the one read path of diff, recover and parents. Memory is a few chunks per model,
 * whatever the model size.
 */
export function alignedChunks(
  keys: readonly AlignedKey[],
  kernel: MergeKernel,
  onProgress: ProgressListener = () => {},
  chunkElements = ANALYSIS_CHUNK_ELEMENTS,
): AsyncGenerator<AlignedChunk> {
  return readAhead(produceChunks(keys, kernel, chunkElements, onProgress), READ_AHEAD_CHUNKS);
}

/** Bytes `alignedChunks` will read for these keys (for progress totals). */
export function alignedBytes(keys: readonly AlignedKey[]): number {
  let total = 0;
  for (const { tensors } of keys) for (const tensor of tensors) total += tensor.byteLength;
  return total;
}
