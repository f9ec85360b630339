import { GyozaError } from "../errors.js";
import { dtypeBytes } from "./dtype.js";
import type { StoredTensor } from "./tensor.js";

/** Largest tensor read into memory whole (strided tensors are gathered in memory). */
export const MAX_GATHER_BYTES = 2 ** 31 - 1; // typed arrays beyond this are unsupported in Node 20

/** Span of storage bytes a (possibly strided) tensor touches, relative to its byteOffset. */
export function stridedExtent(tensor: Pick<StoredTensor, "shape" | "strides" | "dtype">): {
  minByte: number;
  maxByteExclusive: number;
} {
  const itemSize = dtypeBytes(tensor.dtype);
  const strides = tensor.strides;
  if (tensor.shape.some((d) => d === 0)) return { minByte: 0, maxByteExclusive: 0 };
  if (!strides) {
    let count = 1;
    for (const d of tensor.shape) count *= d;
    return { minByte: 0, maxByteExclusive: count * itemSize };
  }
  let low = 0;
  let high = 0;
  for (let i = 0; i < tensor.shape.length; i++) {
    const span = (tensor.shape[i]! - 1) * strides[i]!;
    if (span < 0) low += span;
    else high += span;
  }
  return { minByte: low * itemSize, maxByteExclusive: (high + 1) * itemSize };
}

/** The tensor's elements, contiguous row-major, little-endian. */
export async function readTensorBytes(tensor: StoredTensor): Promise<Uint8Array> {
  if (tensor.byteLength > MAX_GATHER_BYTES) {
    throw new GyozaError("limit", `tensor of ${tensor.byteLength} bytes is too large to read at once`, {
      file: tensor.source.name,
      path: tensor.key,
    });
  }
  if (!tensor.strides || isContiguous(tensor.shape, tensor.strides)) {
    return (await tensor.source.read(tensor.byteOffset, tensor.byteLength)).slice();
  }
  const { minByte, maxByteExclusive } = stridedExtent(tensor);
  const span = await tensor.source.read(tensor.byteOffset + minByte, maxByteExclusive - minByte);
  return gather(span, -minByte, tensor.shape, tensor.strides, dtypeBytes(tensor.dtype));
}

/** Bytes [begin, end) of a contiguous tensor's data (for streaming in ranges). */
export async function readTensorRange(tensor: StoredTensor, begin: number, end: number): Promise<Uint8Array> {
  if (tensor.strides && !isContiguous(tensor.shape, tensor.strides)) {
    throw new GyozaError("usage", "range reads need a contiguous tensor", { path: tensor.key });
  }
  if (begin < 0 || end > tensor.byteLength || begin > end) {
    throw new GyozaError("usage", `range ${begin}..${end} outside tensor of ${tensor.byteLength} bytes`);
  }
  return tensor.source.read(tensor.byteOffset + begin, end - begin);
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i]!;
  }
  return strides;
}

export function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  const expected = contiguousStrides(shape);
  // Dimensions of size 1 can carry any stride without changing the layout.
  return shape.every((d, i) => d <= 1 || strides[i] === expected[i]);
}

function gather(
  span: Uint8Array,
  originByte: number,
  shape: readonly number[],
  strides: readonly number[],
  itemSize: number,
): Uint8Array {
  let count = 1;
  for (const d of shape) count *= d;
  const out = new Uint8Array(count * itemSize);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let source = originByte;
  for (let element = 0; element < count; element++) {
    out.set(span.subarray(source, source + itemSize), element * itemSize);
    // advance the multi-index like an odometer
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]!++;
      source += strides[axis]! * itemSize;
      if (index[axis]! < shape[axis]!) break;
      source -= index[axis]! * strides[axis]! * itemSize;
      index[axis] = 0;
    }
  }
  return out;
}
