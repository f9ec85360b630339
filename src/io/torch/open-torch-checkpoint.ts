import { GyozaError } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";
import { dtypeBytes, tensorByteLength } from "../dtype.js";
import {
  NumpyScalar,
  nodePath,
  PickleDict,
  type PickleValue,
  TorchTensorRef,
  walkPickle,
} from "../pickle/index.js";
import { isContiguous } from "../read-tensor.js";
import type { Checkpoint, PickleScalar, StoredTensor } from "../tensor.js";
import { parseTorchFile, type TorchFile } from "./parse-torch-file.js";

const STATE_DICT_KEY = "state_dict";

/**
 * Opens a torch checkpoint as a loader sees it: `tensors` is the state dict (the root's
 * `state_dict` when it is a dict, else the root itself), nested dicts flattened with "." (A1111
 * embeddings' `string_to_param.*`). Tensors elsewhere (optimizer states) and scalar leaves
 * (`epoch`, `global_step`) are listed in `extras`. Closing the checkpoint closes `source`.
 */
export async function openTorchCheckpoint(source: ByteSource, path: string): Promise<Checkpoint> {
  return torchCheckpointFromFile(await parseTorchFile(source), source, path);
}

export function torchCheckpointFromFile(file: TorchFile, source: ByteSource, path: string): Checkpoint {
  const root = file.root;
  if (!(root instanceof PickleDict)) {
    throw new GyozaError("format", "the checkpoint's root object is not a dict", { file: path });
  }
  const wrapped = root.entries.get(STATE_DICT_KEY);
  const hasWrapper = wrapped instanceof PickleDict;
  const tensors = new Map<string, StoredTensor>();
  const extras: string[] = [];
  const scalars = new Map<string, PickleScalar>();
  for (const node of walkPickle(root, path)) {
    const value = node.value;
    const isTensor = value instanceof TorchTensorRef;
    if (!isTensor && !isScalarLeaf(value)) continue;
    const keys = nodePath(node);
    const inStateDict = !hasWrapper || (keys.length > 1 && keys[0] === STATE_DICT_KEY);
    if (!isTensor || !inStateDict) {
      extras.push(keys.join("."));
      if (!isTensor) {
        const scalar = scalarValue(value);
        if (scalar !== undefined) scalars.set(keys.join("."), scalar);
      }
      continue;
    }
    const key = (hasWrapper ? keys.slice(1) : keys).join(".");
    if (tensors.has(key)) {
      throw new GyozaError("format", "two tensors flatten to the same state-dict key", {
        file: path,
        path: key,
      });
    }
    tensors.set(key, storedTensor(file, file.dataSource ?? source, key, value));
  }
  return {
    path,
    format: file.format === "zip" ? "ckpt-zip" : "ckpt-legacy",
    size: source.size,
    tensors,
    metadata: {},
    pickleGlobals: file.globals,
    extras,
    scalars,
    close: () => source.close(),
  };
}

function storedTensor(
  file: TorchFile,
  source: ByteSource,
  key: string,
  tensor: TorchTensorRef,
): StoredTensor {
  const storage = file.storages.get(tensor.storage.key);
  if (!storage)
    throw new GyozaError("format", `storage ${tensor.storage.key} was not located`, { path: key });
  const itemSize = dtypeBytes(storage.dtype);
  return {
    key,
    dtype: storage.dtype,
    shape: tensor.shape,
    source,
    byteOffset: storage.dataOffset + tensor.storageOffset * itemSize,
    strides: isContiguous(tensor.shape, tensor.stride) ? null : tensor.stride,
    byteLength: tensorByteLength(storage.dtype, tensor.shape),
    storageKey: storage.key,
  };
}

function isScalarLeaf(value: PickleValue): boolean {
  return (
    value === null || typeof value !== "object" || value instanceof Uint8Array || value instanceof NumpyScalar
  );
}

/** A scalar leaf's value for `Checkpoint.scalars`; bytes and other leaves have none. */
function scalarValue(value: PickleValue): PickleScalar | undefined {
  const raw = value instanceof NumpyScalar ? value.value : value;
  if (raw === null || typeof raw === "string" || typeof raw === "number" || typeof raw === "boolean")
    return raw;
  if (typeof raw === "bigint") return Number.isSafeInteger(Number(raw)) ? Number(raw) : raw.toString();
  return undefined;
}
