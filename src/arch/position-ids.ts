import { BufferByteSource } from "../io/byte-source.js";
import type { StoredTensor } from "../io/tensor.js";

/** CLIP position_ids as every loader expects them: int64 arange(77), shape [1, 77] (DOMAIN.md §2). */
export function freshPositionIds(key: string): StoredTensor {
  const ids = new BigInt64Array(77);
  for (let i = 0; i < 77; i++) ids[i] = BigInt(i);
  const source = new BufferByteSource(new Uint8Array(ids.buffer), "<arange(77)>");
  return { key, dtype: "I64", shape: [1, 77], source, byteOffset: 0, strides: null, byteLength: 77 * 8 };
}
