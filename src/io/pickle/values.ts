import type { DType } from "../dtype.js";

/**
 * What the interpreter builds. Dicts are Maps and attributes live in Maps, so no key from a file
 * can ever land on a JS object as an own or prototype property.
 */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleList
  | PickleTuple
  | PickleDict
  | PickleGlobal
  | TorchStorageType
  | TorchStorageRef
  | TorchTensorRef
  | NumpyDtype
  | NumpyScalar;

export class PickleList {
  readonly kind = "list";
  constructor(readonly items: PickleValue[] = []) {}
}

export class PickleTuple {
  readonly kind = "tuple";
  constructor(readonly items: readonly PickleValue[]) {}
}

export class PickleDict {
  readonly kind = "dict";
  readonly entries = new Map<PickleValue, PickleValue>();
  /** Instance attributes set by BUILD (nn.Module state dicts carry `_metadata`). */
  readonly attributes = new Map<string, PickleValue>();
  constructor(readonly type: "dict" | "OrderedDict" = "dict") {}
}

/** An allowlisted callable or class named by GLOBAL / STACK_GLOBAL; only REDUCE can use it. */
export class PickleGlobal {
  readonly kind = "global";
  constructor(readonly qualifiedName: string) {}
}

/** `torch.FloatStorage` and friends: only meaningful inside a persistent id. */
export class TorchStorageType {
  readonly kind = "storage-type";
  constructor(
    readonly qualifiedName: string,
    readonly dtype: DType,
  ) {}
}

/** A storage named by a persistent id; its bytes live elsewhere (zip record or legacy tail). */
export class TorchStorageRef {
  readonly kind = "storage";
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly location: string,
    /** Elements, as the persistent id states them. */
    readonly numel: number,
    /** 5 for zip files, 6 for legacy files (trailing view metadata None). */
    readonly persistentIdLength: number,
  ) {}
}

/** `torch._utils._rebuild_tensor_v2(...)`: a deferred view of a storage; no bytes are read. */
export class TorchTensorRef {
  readonly kind = "tensor";
  constructor(
    readonly storage: TorchStorageRef,
    /** In elements. */
    readonly storageOffset: number,
    readonly shape: readonly number[],
    /** In elements. */
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
    readonly isParameter = false,
  ) {}
}

/** `numpy.dtype(descr, align, copy)`, byte order set by a later BUILD. */
export class NumpyDtype {
  readonly kind = "numpy-dtype";
  byteOrder = "<";
  constructor(readonly descr: string) {}
}

/** `numpy.core.multiarray.scalar(dtype, raw bytes)`, decoded to its Python value. */
export class NumpyScalar {
  readonly kind = "numpy-scalar";
  constructor(
    /** numpy's name, e.g. "float64". */
    readonly dtype: string,
    readonly value: number | bigint | boolean,
  ) {}
}

/** A short description of a value's type for error messages. */
export function describeValue(value: PickleValue): string {
  if (value === null) return "None";
  if (value instanceof Uint8Array) return "bytes";
  switch (typeof value) {
    case "boolean":
      return "bool";
    case "number":
    case "bigint":
      return "number";
    case "string":
      return "str";
    default:
      return value.kind === "dict" ? value.type : value.kind;
  }
}

/** Python's str() of a dict key or index, as fixture paths spell it. */
export function pathComponent(key: PickleValue): string {
  if (typeof key === "string") return key;
  if (typeof key === "number" || typeof key === "bigint") return String(key);
  if (typeof key === "boolean") return key ? "True" : "False";
  if (key === null) return "None";
  return `<${describeValue(key)}>`;
}
