import type { DType } from "../io/dtype.js";
import { aligned, convertElements } from "../io/float-convert.js";
import type { FloatDType, MergeKernel } from "../kernels/merge-kernel.js";

const KERNEL_DTYPES = new Set<DType>(["F16", "BF16", "F32"]);

/** f32 view of little-endian bytes (copied only when misaligned). */
export function float32View(bytes: Uint8Array): Float32Array {
  const a = aligned(bytes, 4);
  return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
}

/**
 * Converts a run of elements between float dtypes with round-to-nearest-even, through the fast
 * kernel where it supports both dtypes and the reference conversion otherwise (F64).
 */
export function convertBytes(
  kernel: MergeKernel,
  bytes: Uint8Array,
  from: DType,
  to: DType,
  allocate: (byteLength: number) => Uint8Array = (n) => Buffer.allocUnsafeSlow(n),
): Uint8Array {
  if (from === to) return bytes;
  if (!KERNEL_DTYPES.has(from) || !KERNEL_DTYPES.has(to)) return convertElements(bytes, from, to);
  const count = bytes.byteLength / (from === "F32" ? 4 : 2);
  if (to === "F32") {
    // 16-bit → f32: decode straight into the output buffer
    const out = allocate(count * 4); // fully written by the kernel
    if (out.byteOffset % 4 === 0)
      kernel.toFloat32(bytes, from as FloatDType, new Float32Array(out.buffer, out.byteOffset, count));
    else {
      const values = new Float32Array(count);
      kernel.toFloat32(bytes, from as FloatDType, values);
      out.set(new Uint8Array(values.buffer));
    }
    return out;
  }
  let values: Float32Array;
  if (from === "F32") values = float32View(bytes);
  else {
    values = new Float32Array(count);
    kernel.toFloat32(bytes, from as FloatDType, values);
  }
  const out = allocate(count * 2); // fully written by the kernel
  kernel.fromFloat32(values, to as FloatDType, out);
  return out;
}
