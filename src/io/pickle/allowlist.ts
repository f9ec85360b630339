import type { GyozaError, GyozaErrorCode } from "../../errors.js";
import { DTYPES, type DType } from "../dtype.js";
import { f16BitsToF32 } from "../float-convert.js";
import { MAX_TENSOR_RANK } from "./limits.js";
import {
  describeValue,
  NumpyDtype,
  NumpyScalar,
  PickleDict,
  PickleGlobal,
  PickleTuple,
  type PickleValue,
  TorchStorageRef,
  TorchStorageType,
  TorchTensorRef,
} from "./values.js";

/** Builds an error that names the opcode and byte offset being interpreted. */
export type Fail = (code: GyozaErrorCode, message: string) => GyozaError;

/** `torch.FloatStorage` … → dtype, from the dtype table. */
export const STORAGE_TYPES: ReadonlyMap<string, DType> = new Map(
  Object.entries(DTYPES)
    .filter(([, info]) => info.torchStorage !== null)
    .map(([dtype, info]) => [`torch.${info.torchStorage}`, dtype as DType]),
);

const REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";
const REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
const REBUILD_PARAMETER_WITH_STATE = "torch._utils._rebuild_parameter_with_state";
const ORDERED_DICT = "collections.OrderedDict";
const NUMPY_DTYPE = "numpy.dtype";
const CODECS_ENCODE = "_codecs.encode";
/** numpy 2 moved `numpy.core` to `numpy._core`; both spell the same harmless constructor. */
const NUMPY_SCALARS = new Set(["numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"]);

/** Every callable a checkpoint may name (exact `module.name`); everything else is refused. */
export const ALLOWED_CALLABLES: ReadonlySet<string> = new Set([
  ORDERED_DICT,
  REBUILD_TENSOR,
  REBUILD_PARAMETER,
  REBUILD_PARAMETER_WITH_STATE,
  NUMPY_DTYPE,
  CODECS_ENCODE,
  ...NUMPY_SCALARS,
]);

/** Encodings `_codecs.encode` may use: numpy smuggles raw scalar bytes as latin-1 text. */
const LATIN1_NAMES = new Set(["latin1", "latin-1"]);

/** numpy dtype descriptors numpy scalars use → (numpy name, byte size). */
const NUMPY_SCALAR_TYPES: ReadonlyMap<string, { name: string; bytes: number }> = new Map([
  ["f8", { name: "float64", bytes: 8 }],
  ["f4", { name: "float32", bytes: 4 }],
  ["f2", { name: "float16", bytes: 2 }],
  ["i8", { name: "int64", bytes: 8 }],
  ["i4", { name: "int32", bytes: 4 }],
  ["i2", { name: "int16", bytes: 2 }],
  ["i1", { name: "int8", bytes: 1 }],
  ["u8", { name: "uint64", bytes: 8 }],
  ["u4", { name: "uint32", bytes: 4 }],
  ["u2", { name: "uint16", bytes: 2 }],
  ["u1", { name: "uint8", bytes: 1 }],
  ["b1", { name: "bool", bytes: 1 }],
]);

/** BUILD state keys must be plain identifiers; dunders and JS-magic names are refused. */
const PLAIN_ATTRIBUTE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FORBIDDEN_ATTRIBUTES = new Set(["constructor", "prototype"]);

/** GLOBAL / STACK_GLOBAL: an allowlisted callable or storage type, or an unsafe-pickle error. */
export function resolveGlobal(qualifiedName: string, fail: Fail): PickleGlobal | TorchStorageType {
  const dtype = STORAGE_TYPES.get(qualifiedName);
  if (dtype) return new TorchStorageType(qualifiedName, dtype);
  if (ALLOWED_CALLABLES.has(qualifiedName)) return new PickleGlobal(qualifiedName);
  throw fail("unsafe-pickle", `refusing global ${qualifiedName}: it is not on the checkpoint allowlist`);
}

/** REDUCE (and NEWOBJ of OrderedDict): calls one of the allowlisted callables on checked arguments. */
export function applyReduce(callable: PickleValue, args: PickleValue, fail: Fail): PickleValue {
  if (!(callable instanceof PickleGlobal)) {
    throw fail("unsafe-pickle", `refusing to call a ${describeValue(callable)}`);
  }
  if (!(args instanceof PickleTuple)) {
    throw fail("format", `${callable.qualifiedName} called with ${describeValue(args)} instead of a tuple`);
  }
  const name = callable.qualifiedName;
  const items = args.items;
  switch (name) {
    case ORDERED_DICT:
      if (items.length !== 0) throw fail("unsafe-pickle", `${name} called with arguments`);
      return new PickleDict("OrderedDict");
    case REBUILD_TENSOR:
      return rebuildTensor(items, fail);
    case REBUILD_PARAMETER:
    case REBUILD_PARAMETER_WITH_STATE:
      return rebuildParameter(name, items, fail);
    case NUMPY_DTYPE:
      if (typeof items[0] !== "string" || items.length !== 3) {
        throw fail("format", `${name} needs (descr, align, copy)`);
      }
      return new NumpyDtype(items[0]);
    case CODECS_ENCODE:
      return latin1Encode(items, fail);
    default:
      if (NUMPY_SCALARS.has(name)) return numpyScalar(items, fail);
      throw fail("unsafe-pickle", `refusing to call ${name}`);
  }
}

/** BUILD: only attribute dicts on OrderedDicts (nn.Module `_metadata`) and numpy dtype state. */
export function applyBuild(target: PickleValue, state: PickleValue, fail: Fail): void {
  if (target instanceof NumpyDtype && state instanceof PickleTuple) {
    const byteOrder = state.items[1];
    if (typeof byteOrder !== "string" || !["<", ">", "|", "="].includes(byteOrder)) {
      throw fail("format", "numpy.dtype state has no byte order");
    }
    target.byteOrder = byteOrder;
    return;
  }
  if (!(target instanceof PickleDict) || target.type !== "OrderedDict") {
    throw fail("unsafe-pickle", `refusing BUILD on a ${describeValue(target)}`);
  }
  if (!(state instanceof PickleDict) || state.type !== "dict") {
    throw fail("unsafe-pickle", `refusing BUILD of an OrderedDict with a ${describeValue(state)} state`);
  }
  for (const key of state.entries.keys()) {
    if (
      typeof key !== "string" ||
      !PLAIN_ATTRIBUTE.test(key) ||
      key.startsWith("__") ||
      FORBIDDEN_ATTRIBUTES.has(key)
    ) {
      const shown = typeof key === "string" ? JSON.stringify(key) : describeValue(key);
      throw fail("unsafe-pickle", `refusing BUILD that sets attribute ${shown} on an OrderedDict`);
    }
  }
  for (const [key, value] of state.entries) target.attributes.set(key as string, value);
}

/** Persistent id `('storage', torch.XStorage, key, location, numel[, None])` → storage reference. */
export function persistentLoad(pid: PickleValue, fail: Fail): TorchStorageRef {
  if (!(pid instanceof PickleTuple) || (pid.items.length !== 5 && pid.items.length !== 6)) {
    throw fail("format", `persistent id is a ${describeValue(pid)}, expected a 5- or 6-tuple`);
  }
  const [tag, type, key, location, numel, view] = pid.items;
  if (tag !== "storage") throw fail("format", `persistent id tag ${JSON.stringify(tag)} is not "storage"`);
  if (!(type instanceof TorchStorageType)) throw fail("format", "persistent id does not name a storage type");
  if (typeof key !== "string" || typeof location !== "string") {
    throw fail("format", "persistent id key and location must be strings");
  }
  if (!isCount(numel)) throw fail("format", `persistent id numel ${String(numel)} is not a valid count`);
  if (pid.items.length === 6 && view !== null) {
    throw fail("format", `storage ${key} uses legacy view metadata, which is not supported`);
  }
  return new TorchStorageRef(key, type.dtype, location, numel, pid.items.length);
}

function rebuildTensor(items: readonly PickleValue[], fail: Fail): TorchTensorRef {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) as torch writes it.
  if (items.length !== 6 && items.length !== 7) {
    throw fail("format", `_rebuild_tensor_v2 takes 6 or 7 arguments, got ${items.length}`);
  }
  const [storage, offset, size, stride, requiresGrad, hooks] = items;
  if (!(storage instanceof TorchStorageRef)) throw fail("format", "_rebuild_tensor_v2 without a storage");
  if (!isCount(offset)) throw fail("format", `storage offset ${String(offset)} is not a valid count`);
  const shape = countTuple(size, "size", fail);
  const strides = countTuple(stride, "stride", fail);
  if (shape.length !== strides.length) {
    throw fail("format", `tensor size [${shape}] and stride [${strides}] differ in rank`);
  }
  if (typeof requiresGrad !== "boolean") throw fail("format", "requires_grad is not a bool");
  if (!(hooks instanceof PickleDict)) throw fail("format", "backward_hooks is not a dict");
  return new TorchTensorRef(storage, offset, shape, strides, requiresGrad);
}

function rebuildParameter(name: string, items: readonly PickleValue[], fail: Fail): TorchTensorRef {
  const expected = name === REBUILD_PARAMETER ? 3 : 4;
  const [data, requiresGrad, hooks, state] = items;
  if (items.length !== expected || !(data instanceof TorchTensorRef) || typeof requiresGrad !== "boolean") {
    throw fail(
      "format",
      `${name} needs (tensor, requires_grad, backward_hooks${expected === 4 ? ", state" : ""})`,
    );
  }
  if (!(hooks instanceof PickleDict)) throw fail("format", "backward_hooks is not a dict");
  // Parameters with Python-side state would need that state applied to an object: refuse unless empty.
  if (expected === 4 && state !== null && !(state instanceof PickleDict && state.entries.size === 0)) {
    throw fail("unsafe-pickle", `${name} with non-empty state is not supported`);
  }
  return new TorchTensorRef(data.storage, data.storageOffset, data.shape, data.stride, requiresGrad, true);
}

function latin1Encode(items: readonly PickleValue[], fail: Fail): Uint8Array {
  const [text, encoding] = items;
  if (items.length !== 2 || typeof text !== "string" || typeof encoding !== "string") {
    throw fail("unsafe-pickle", `${CODECS_ENCODE} needs two literal strings`);
  }
  if (!LATIN1_NAMES.has(encoding)) {
    throw fail("unsafe-pickle", `refusing ${CODECS_ENCODE} with encoding ${JSON.stringify(encoding)}`);
  }
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff)
      throw fail("format", `${CODECS_ENCODE}: character U+${code.toString(16)} is not latin-1`);
    bytes[i] = code;
  }
  return bytes;
}

function numpyScalar(items: readonly PickleValue[], fail: Fail): NumpyScalar {
  const [dtype, raw] = items;
  if (items.length !== 2 || !(dtype instanceof NumpyDtype) || !(raw instanceof Uint8Array)) {
    throw fail("format", "numpy scalar needs (dtype, bytes)");
  }
  const descr = dtype.descr.replace(/^[<>|=]/, "");
  const type = NUMPY_SCALAR_TYPES.get(descr);
  if (!type) throw fail("format", `numpy scalar of unsupported dtype ${JSON.stringify(dtype.descr)}`);
  if (raw.byteLength !== type.bytes) {
    throw fail("format", `numpy ${type.name} scalar has ${raw.byteLength} bytes, expected ${type.bytes}`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const little = dtype.byteOrder !== ">";
  const value = (() => {
    switch (type.name) {
      case "float64":
        return view.getFloat64(0, little);
      case "float32":
        return view.getFloat32(0, little);
      case "float16":
        return f16BitsToF32(view.getUint16(0, little));
      case "int64":
        return smallest(view.getBigInt64(0, little));
      case "uint64":
        return smallest(view.getBigUint64(0, little));
      case "int32":
        return view.getInt32(0, little);
      case "uint32":
        return view.getUint32(0, little);
      case "int16":
        return view.getInt16(0, little);
      case "uint16":
        return view.getUint16(0, little);
      case "int8":
        return view.getInt8(0);
      case "bool":
        return view.getUint8(0) !== 0;
      default:
        return view.getUint8(0);
    }
  })();
  return new NumpyScalar(type.name, value);
}

/** A bigint as a number when exactly representable. */
export function smallest(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

function isCount(value: PickleValue | undefined): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function countTuple(value: PickleValue | undefined, what: string, fail: Fail): number[] {
  if (!(value instanceof PickleTuple)) throw fail("format", `tensor ${what} is not a tuple`);
  if (value.items.length > MAX_TENSOR_RANK) {
    throw fail(
      "limit",
      `tensor ${what} has ${value.items.length} dimensions, over the ${MAX_TENSOR_RANK} limit`,
    );
  }
  return value.items.map((item) => {
    if (!isCount(item)) throw fail("format", `tensor ${what} entry ${String(item)} is not a valid count`);
    return item;
  });
}
