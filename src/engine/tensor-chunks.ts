import { dtypeBytes } from "../io/dtype.js";
import { readTensorBytes } from "../io/read-tensor.js";
import type { StoredTensor } from "../io/tensor.js";
import type { BufferPool } from "./buffer-pool.js";

/** Bytes per read when streaming a tensor: large enough for sequential disk speed, small enough to bound memory. */
export const STREAM_CHUNK_BYTES = 8 << 20;

/**
 * A tensor's contiguous bytes in chunks that end on element boundaries. Strided (view) tensors are
 * gathered whole first; they are small in real checkpoints (views are rare, weights are contiguous).
 */
export async function* tensorChunks(
  tensor: StoredTensor,
  chunkBytes = STREAM_CHUNK_BYTES,
  pool?: BufferPool,
): AsyncGenerator<Uint8Array> {
  if (tensor.strides) {
    const whole = await readTensorBytes(tensor);
    for (let at = 0; at < whole.byteLength; at += chunkBytes) yield whole.subarray(at, at + chunkBytes);
    return;
  }
  const step = Math.max(dtypeBytes(tensor.dtype), chunkBytes - (chunkBytes % dtypeBytes(tensor.dtype)));
  for (let at = 0; at < tensor.byteLength; at += step) {
    const length = Math.min(step, tensor.byteLength - at);
    const position = tensor.byteOffset + at;
    yield pool
      ? await tensor.source.readInto(pool.acquire(length), position)
      : await tensor.source.read(position, length);
  }
}
