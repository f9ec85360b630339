import { f32, type MergeMethod } from "./merge-method.js";

/**
 * TIES-merging of two deltas: trim each to its top-k fraction by magnitude, elect the sign of the
 * sum per element, then average only the values that agree with it (the "disjoint mean"), times α.
 * Ties at the magnitude threshold keep the lowest indices, so the result is deterministic.
 */
export const ties: MergeMethod = {
  id: "ties",
  summary: "TIES: trim deltas to their top-k magnitudes, elect a sign, average the agreeing values",
  reference: "https://arxiv.org/abs/2306.01708",
  inputs: [
    { name: "a", space: "delta" },
    { name: "b", space: "delta" },
  ],
  output: "delta",
  params: [
    {
      name: "k",
      default: 0.2,
      min: 0,
      max: 1,
      description: "fraction of each delta kept (by magnitude)",
      perBlock: true,
    },
    {
      name: "alpha",
      default: 1,
      description: "scale of the merged delta",
      perBlock: true,
      interpolates: true,
    },
  ],
  granularity: "tensor",
  apply([a, b], params, out) {
    const x = trimToTopK(a!, params.k!);
    const y = trimToTopK(b!, params.k!);
    const alpha = f32(params.alpha!);
    for (let i = 0; i < out.length; i++) {
      const u = x[i]!;
      const v = y[i]!;
      const positive = u + v >= 0; // mergekit: a zero sum elects +
      const takeU = positive ? u > 0 : u < 0;
      const takeV = positive ? v > 0 : v < 0;
      const count = (takeU ? 1 : 0) + (takeV ? 1 : 0);
      const agreeing = (takeU ? u : 0) + (takeV ? v : 0);
      out[i] = count === 0 ? 0 : f32(f32(agreeing / count) * alpha);
    }
  },
};

/**
 * Keeps the floor(k·n) largest-magnitude elements, zeroes the rest. The threshold comes from a
 * two-pass radix select on the f32 bit patterns (|x| orders like its bits as an unsigned integer),
 * O(n) where a sort of a 50M-element tensor would take seconds.
 */
export function trimToTopK(values: Float32Array, k: number): Float32Array {
  const n = values.length;
  const keep = Math.floor(k * n);
  const result = new Float32Array(n);
  if (keep <= 0) return result;
  if (keep >= n) {
    result.set(values);
    return result;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const { threshold, equalToKeep } = kthLargestMagnitudeBits(bits, keep);
  let equalSlots = equalToKeep;
  for (let i = 0; i < n; i++) {
    const magnitude = (bits[i]! & 0x7fffffff) >>> 0;
    if (magnitude > threshold || (magnitude === threshold && equalSlots-- > 0)) result[i] = values[i]!;
  }
  return result;
}

const RADIX = 65536;

/** The bits of the keep-th largest |x|, and how many elements equal to it are kept. */
function kthLargestMagnitudeBits(
  bits: Uint32Array,
  keep: number,
): { threshold: number; equalToKeep: number } {
  const high = new Uint32Array(RADIX);
  for (let i = 0; i < bits.length; i++) high[(bits[i]! & 0x7fffffff) >>> 16]!++;
  let remaining = keep;
  let top = RADIX - 1;
  while (high[top]! < remaining) remaining -= high[top--]!;
  const low = new Uint32Array(RADIX);
  for (let i = 0; i < bits.length; i++) {
    const magnitude = bits[i]! & 0x7fffffff;
    if (magnitude >>> 16 === top) low[magnitude & 0xffff]!++;
  }
  let bottom = RADIX - 1;
  while (low[bottom]! < remaining) remaining -= low[bottom--]!;
  return { threshold: ((top << 16) | bottom) >>> 0, equalToKeep: remaining };
}
