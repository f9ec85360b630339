import { GyozaError } from "../errors.js";
import { type DType, dtypeBytes, isFloatDType } from "./dtype.js";

/**
 * Exact conversions between the float dtypes, rounding to nearest even like torch's `.half()`,
 * `.bfloat16()` and `.float()` on CPU. This is the plain-TypeScript reference; faster kernels must
 * agree with it bit for bit. The machine is assumed little-endian (as every SD file is).
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

let f16ToF32: Float32Array | undefined;

/**
 * f16 bit pattern → f32 value, for all 65536 patterns (exact: every f16 is an f32). Built on first
 * use: as a module-level constant, every command that imports this module paid its 65,536-step loop
 * at start-up (~8 ms, before the JIT warms up).
 */
export function f16ToF32Table(): Float32Array {
  f16ToF32 ??= buildF16ToF32();
  return f16ToF32;
}

function buildF16ToF32(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    let bits: number;
    if (exponent === 0x1f) {
      bits = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent !== 0) {
      bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa === 0) {
      bits = sign;
    } else {
      // subnormal: normalise the mantissa
      let e = 113;
      let m = mantissa;
      while ((m & 0x400) === 0) {
        m <<= 1;
        e--;
      }
      bits = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
    u32Scratch[0] = bits >>> 0;
    table[h] = f32Scratch[0]!;
  }
  return table;
}

/** f32 bit pattern → f16 bit pattern, round to nearest even; NaN → quiet NaN with the sign kept (0x7e00). */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return mantissa !== 0 ? sign | 0x7e00 : sign | 0x7c00;
  const halfExponent = exponent - 112; // rebias 127 → 15
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign; // below half of the smallest subnormal
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) !== 0)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) !== 0)) half++; // may carry into the exponent, up to inf
  return sign | half;
}

/** f32 bit pattern → bf16 bit pattern, like c10::round_to_nearest_even (NaN → 0x7fc0). */
export function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  const bias = ((bits >>> 16) & 1) + 0x7fff;
  return ((bits + bias) >>> 16) & 0xffff;
}

export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  return f32BitsToF16Bits(u32Scratch[0]!);
}

export function f16BitsToF32(bits: number): number {
  return f16ToF32Table()[bits & 0xffff]!;
}

/** A typed-array view needs its offset aligned to the element size: copy when it is not. */
export function aligned(bytes: Uint8Array, alignment: number): Uint8Array {
  return bytes.byteOffset % alignment === 0 ? bytes : bytes.slice();
}

/** Decodes little-endian float elements of `dtype` into f32 (f64 rounds to nearest even). */
export function decodeToFloat32(bytes: Uint8Array, dtype: DType, out?: Float32Array): Float32Array {
  const count = bytes.byteLength / dtypeBytes(dtype);
  const result = out ?? new Float32Array(count);
  switch (dtype) {
    case "F32":
      result.set(new Float32Array(aligned(bytes, 4).buffer, aligned(bytes, 4).byteOffset, count));
      break;
    case "F16": {
      const src = aligned(bytes, 2);
      const halves = new Uint16Array(src.buffer, src.byteOffset, count);
      const table = f16ToF32Table();
      for (let i = 0; i < count; i++) result[i] = table[halves[i]!]!;
      break;
    }
    case "BF16": {
      const src = aligned(bytes, 2);
      const halves = new Uint16Array(src.buffer, src.byteOffset, count);
      const asBits = new Uint32Array(result.buffer, result.byteOffset, count);
      for (let i = 0; i < count; i++) asBits[i] = halves[i]! << 16;
      break;
    }
    case "F64": {
      const src = aligned(bytes, 8);
      result.set(new Float64Array(src.buffer, src.byteOffset, count));
      break;
    }
    default:
      throw new GyozaError("usage", `cannot decode ${dtype} as float`);
  }
  return result;
}

/** Encodes f32 values as `dtype` (round to nearest even), little-endian. */
export function encodeFromFloat32(values: Float32Array, dtype: DType, out?: Uint8Array): Uint8Array {
  const count = values.length;
  const result = out ?? new Uint8Array(count * dtypeBytes(dtype));
  const bits = new Uint32Array(values.buffer, values.byteOffset, count);
  switch (dtype) {
    case "F32":
      result.set(new Uint8Array(values.buffer, values.byteOffset, count * 4));
      break;
    case "F16": {
      const target = new Uint16Array(result.buffer, result.byteOffset, count);
      for (let i = 0; i < count; i++) target[i] = f32BitsToF16Bits(bits[i]!);
      break;
    }
    case "BF16": {
      const target = new Uint16Array(result.buffer, result.byteOffset, count);
      for (let i = 0; i < count; i++) target[i] = f32BitsToBf16Bits(bits[i]!);
      break;
    }
    case "F64": {
      const target = new Float64Array(result.buffer, result.byteOffset, count);
      for (let i = 0; i < count; i++) target[i] = values[i]!;
      break;
    }
    default:
      throw new GyozaError("usage", `cannot encode float as ${dtype}`);
  }
  return result;
}

/**
 * Converts float elements between dtypes. f64 → f16/bf16 rounds through f32 exactly as torch does
 * (`c10::Half(float)` is fed the double after an implicit cast to float). Non-float dtypes must match.
 */
export function convertElements(bytes: Uint8Array, from: DType, to: DType): Uint8Array {
  if (from === to) return bytes;
  if (!isFloatDType(from) || !isFloatDType(to)) {
    throw new GyozaError("usage", `cannot convert ${from} to ${to}: only float dtypes convert`);
  }
  return encodeFromFloat32(decodeToFloat32(bytes, from), to);
}
