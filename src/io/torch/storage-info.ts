import { GyozaError } from "../../errors.js";
import { type DType, dtypeBytes } from "../dtype.js";
import { nodePath, type PickleValue, TorchTensorRef, walkPickle } from "../pickle/index.js";

/** A storage whose bytes were located in the file. */
export interface TorchStorageInfo {
  readonly key: string;
  readonly dtype: DType;
  /** Elements. */
  readonly numel: number;
  /** As pickled (`cpu`, `cuda:0`, …); ignored for reading. */
  readonly location: string;
  /** Absolute file offset of the first byte. */
  readonly dataOffset: number;
  readonly byteLength: number;
  /** 5 (zip) or 6 (legacy). */
  readonly persistentIdLength: number;
  /** Zip record holding the bytes (zip files only). */
  readonly entryName?: string;
}

/** Checks that a storage record holds exactly the bytes its persistent id declares. */
export function checkRecordSize(
  file: string,
  storage: { key: string; dtype: DType; numel: number },
  recordBytes: number,
  where: string,
): number {
  const declared = storage.numel * dtypeBytes(storage.dtype);
  if (!Number.isSafeInteger(declared) || declared !== recordBytes) {
    throw new GyozaError(
      "format",
      `storage ${storage.key} (${storage.dtype}) declares ${storage.numel} elements (${declared} bytes) but ${where} holds ${recordBytes} bytes`,
      { file },
    );
  }
  return declared;
}

/**
 * Checks that every tensor view stays inside its storage: storage_offset plus the strided extent
 * must not exceed the storage's elements, or a later read would take bytes from a neighbour.
 */
export function checkTensorExtents(file: string, root: PickleValue): void {
  for (const node of walkPickle(root, file)) {
    const tensor = node.value;
    if (!(tensor instanceof TorchTensorRef)) continue;
    const needed = tensorExtentElements(tensor);
    if (needed === undefined || needed > tensor.storage.numel) {
      throw new GyozaError(
        "format",
        `tensor of shape [${tensor.shape}] with stride [${tensor.stride}] at storage offset ${tensor.storageOffset} needs ${needed ?? "too many"} elements but storage ${tensor.storage.key} holds ${tensor.storage.numel}`,
        { file, path: nodePath(node).join(".") },
      );
    }
  }
}

/** Elements of the storage a view reaches (offset + last touched element + 1); undefined on overflow. */
export function tensorExtentElements(tensor: TorchTensorRef): number | undefined {
  if (tensor.shape.some((dim) => dim === 0)) return tensor.storageOffset;
  let last = tensor.storageOffset;
  for (let axis = 0; axis < tensor.shape.length; axis++) {
    last += (tensor.shape[axis]! - 1) * tensor.stride[axis]!;
    if (!Number.isSafeInteger(last)) return undefined;
  }
  return last + 1;
}
