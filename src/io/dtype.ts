import { GyozaError } from "../errors.js";

/** Tensor element types, named as safetensors names them. */
export const DTYPES = {
  F64: { bytes: 8, kind: "float", torchStorage: "DoubleStorage" },
  F32: { bytes: 4, kind: "float", torchStorage: "FloatStorage" },
  F16: { bytes: 2, kind: "float", torchStorage: "HalfStorage" },
  BF16: { bytes: 2, kind: "float", torchStorage: "BFloat16Storage" },
  F8_E4M3: { bytes: 1, kind: "float", torchStorage: null },
  F8_E5M2: { bytes: 1, kind: "float", torchStorage: null },
  I64: { bytes: 8, kind: "int", torchStorage: "LongStorage" },
  I32: { bytes: 4, kind: "int", torchStorage: "IntStorage" },
  I16: { bytes: 2, kind: "int", torchStorage: "ShortStorage" },
  I8: { bytes: 1, kind: "int", torchStorage: "CharStorage" },
  U8: { bytes: 1, kind: "int", torchStorage: "ByteStorage" },
  BOOL: { bytes: 1, kind: "bool", torchStorage: "BoolStorage" },
} as const satisfies Record<string, { bytes: number; kind: string; torchStorage: string | null }>;

export type DType = keyof typeof DTYPES;

export const DTYPE_NAMES = Object.keys(DTYPES) as DType[];

export function isDType(name: string): name is DType {
  return Object.hasOwn(DTYPES, name);
}

export function dtypeBytes(dtype: DType): number {
  return DTYPES[dtype].bytes;
}

export function isFloatDType(dtype: DType): boolean {
  return DTYPES[dtype].kind === "float";
}

/** User-facing precision names (`--dtype fp16`) to dtypes. */
export const PRECISION_NAMES: Record<string, DType> = {
  fp16: "F16",
  f16: "F16",
  half: "F16",
  bf16: "BF16",
  fp32: "F32",
  f32: "F32",
  float: "F32",
  fp64: "F64",
};

export function parsePrecision(name: string): DType {
  const dtype =
    PRECISION_NAMES[name.toLowerCase()] ??
    (isDType(name.toUpperCase()) ? (name.toUpperCase() as DType) : undefined);
  if (!dtype)
    throw new GyozaError("unknown-id", `unknown precision "${name}"`, { fix: "use fp16, bf16 or fp32" });
  return dtype;
}

/** Elements in a tensor of this shape; throws on non-integer or unsafe sizes. */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0)
      throw new GyozaError("format", `invalid dimension ${dim} in shape [${shape}]`);
    count *= dim;
    if (!Number.isSafeInteger(count)) throw new GyozaError("limit", `shape [${shape}] has too many elements`);
  }
  return count;
}

export function tensorByteLength(dtype: DType, shape: readonly number[]): number {
  const bytes = elementCount(shape) * dtypeBytes(dtype);
  if (!Number.isSafeInteger(bytes))
    throw new GyozaError("limit", `shape [${shape}] of ${dtype} is too large`);
  return bytes;
}
