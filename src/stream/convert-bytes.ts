import { type DType, dtypeBytes } from "../io/dtype.js";
import { aligned, convertElements } from "../io/float-convert.js";
import type { StoredTensor } from "../io/tensor.js";
import type { FloatDType, MergeKernel } from "../kernels/merge-kernel.js";
import { KERNEL_DTYPES } from "../kernels/merge-kernel.js";
import type { BufferPool } from "./buffer-pool.js";
import { tensorChunks } from "./tensor-chunks.js";
import type { DeferredChunk, OutputChunk, PendingChunk } from "./write-output.js";

/** f32 view of little-endian bytes (copied only when misaligned). */
export function float32View(bytes: Uint8Array): Float32Array {
  const a = aligned(bytes, 4);
  return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
}

/**
 * Converts every element of `bytes` into `out` (as many elements of `to`) with round-to-nearest-even,
 * through the fast kernel (16/32-bit floats only).
 */
export function convertInto(
  kernel: MergeKernel,
  bytes: Uint8Array,
  from: FloatDType,
  to: FloatDType,
  out: Uint8Array,
): void {
  if (from === to) {
    out.set(bytes);
    return;
  }
  const count = bytes.byteLength / (from === "F32" ? 4 : 2);
  if (to === "F32") {
    // 16-bit → f32: decode straight into the output
    if (out.byteOffset % 4 === 0)
      kernel.toFloat32(bytes, from, new Float32Array(out.buffer, out.byteOffset, count));
    else {
      const values = new Float32Array(count);
      kernel.toFloat32(bytes, from, values);
      out.set(new Uint8Array(values.buffer));
    }
    return;
  }
  let values: Float32Array;
  if (from === "F32") values = float32View(bytes);
  else {
    values = new Float32Array(count);
    kernel.toFloat32(bytes, from, values);
  }
  kernel.fromFloat32(values, to, out);
}

/**
 * A stored tensor's bytes converted to `to`, chunk by chunk (taking a chunk starts its read): as read
 * where the dtype is kept; deferred (converted straight into the writer's blocks) between kernel
 * dtypes; else converted here.
 */
export function* convertedChunks(
  tensor: StoredTensor,
  to: DType,
  kernel: MergeKernel,
  pool?: BufferPool,
): Generator<PendingChunk> {
  const from = tensor.dtype;
  const deferred = from !== to && KERNEL_DTYPES.has(from) && KERNEL_DTYPES.has(to);
  for (const { holds, ready } of tensorChunks(tensor, undefined, pool)) {
    yield {
      holds,
      ready: ready.then((chunk): OutputChunk => {
        if (from === to) return chunk;
        if (deferred) return deferredConversion(kernel, chunk, from as FloatDType, to as FloatDType, pool);
        const converted = convertElements(chunk, from, to);
        pool?.release(chunk);
        return converted;
      }),
    };
  }
}

function deferredConversion(
  kernel: MergeKernel,
  bytes: Uint8Array,
  from: FloatDType,
  to: FloatDType,
  pool: BufferPool | undefined,
): DeferredChunk {
  const fromBytes = dtypeBytes(from);
  const toBytes = dtypeBytes(to);
  return {
    byteLength: (bytes.byteLength / fromBytes) * toBytes,
    elementBytes: toBytes,
    fill(target, offset) {
      const first = (offset / toBytes) * fromBytes;
      const source = bytes.subarray(first, first + (target.byteLength / toBytes) * fromBytes);
      convertInto(kernel, source, from, to, target);
    },
    release: () => pool?.release(bytes),
  };
}
