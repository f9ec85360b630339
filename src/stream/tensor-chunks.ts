import { readStreamed } from "../io/byte-source.js";
import { dtypeBytes } from "../io/dtype.js";
import { readTensorBytes } from "../io/read-tensor.js";
import type { StoredTensor } from "../io/tensor.js";
import type { BufferPool } from "./buffer-pool.js";

/** Bytes per read when streaming a tensor: large enough for sequential disk speed, small enough to bound memory. */
export const STREAM_CHUNK_BYTES = 4 << 20;

/**
 * A tensor's contiguous bytes in chunks that end on element boundaries, each read when it is taken
 * (so a consumer that takes several ahead has several reads in flight). Strided (view) tensors are
 * gathered whole first; they are small in real checkpoints (views are rare, weights are contiguous).
 */
export function* tensorChunks(
  tensor: StoredTensor,
  chunkBytes = STREAM_CHUNK_BYTES,
  pool?: BufferPool,
): Generator<{ holds: number; ready: Promise<Uint8Array> }> {
  if (tensor.strides) {
    const whole = readTensorBytes(tensor);
    for (let at = 0; at < tensor.byteLength; at += chunkBytes)
      yield {
        holds: at === 0 ? tensor.byteLength : 0,
        ready: whole.then((bytes) => bytes.subarray(at, at + chunkBytes)),
      };
    return;
  }
  const step = Math.max(dtypeBytes(tensor.dtype), chunkBytes - (chunkBytes % dtypeBytes(tensor.dtype)));
  for (let at = 0; at < tensor.byteLength; at += step) {
    const length = Math.min(step, tensor.byteLength - at);
    const position = tensor.byteOffset + at;
    yield {
      holds: length,
      ready: pool
        ? readStreamed(tensor.source, position, length, pool)
        : tensor.source.read(position, length),
    };
  }
}
