import type { DType } from "../io/dtype.js";

/** Builds safetensors bytes in memory from a raw header object (which may be deliberately wrong). */
export function buildSafetensorsBytes(
  header: Record<string, unknown>,
  data: Uint8Array,
  options: { declaredLength?: bigint } = {},
): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, options.declaredLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

export interface TinyTensor {
  key: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** A well-formed file holding these tensors in the given order. */
export function buildValidSafetensors(tensors: TinyTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const tensor of tensors) {
    header[tensor.key] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + tensor.data.byteLength],
    };
    offset += tensor.data.byteLength;
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const tensor of tensors) {
    data.set(tensor.data, at);
    at += tensor.data.byteLength;
  }
  return buildSafetensorsBytes(header, data);
}

/** Deterministic pseudo-random bytes (xorshift32), so tests are reproducible. */
export function pseudoRandomBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state & 0xff;
  }
  return out;
}
