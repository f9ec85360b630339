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
    { name: "alpha", default: 1, description: "scale of the merged delta", perBlock: true },
  ],
  granularity: "tensor",
  apply(inputs, params, out) {
    const trimmed = inputs.map((delta) => trimToTopK(delta, params.k!));
    const alpha = f32(params.alpha!);
    for (let i = 0; i < out.length; i++) {
      let sum = 0;
      for (const t of trimmed) sum += t[i]!;
      const sign = sum >= 0 ? 1 : -1; // mergekit: a zero sum elects +
      let agreeing = 0;
      let count = 0;
      for (const t of trimmed) {
        const v = t[i]!;
        if (Math.sign(v) === sign) {
          agreeing += v;
          count++;
        }
      }
      out[i] = count === 0 ? 0 : f32(f32(agreeing / count) * alpha);
    }
  },
};

/** Keeps the floor(k·n) largest-magnitude elements, zeroes the rest. */
export function trimToTopK(values: Float32Array, k: number): Float32Array {
  const n = values.length;
  const keep = Math.floor(k * n);
  const result = new Float32Array(n);
  if (keep <= 0) return result;
  if (keep >= n) {
    result.set(values);
    return result;
  }
  const magnitudes = Float32Array.from(values, Math.abs).sort();
  const threshold = magnitudes[n - keep]!;
  let aboveThreshold = 0;
  for (let i = 0; i < n; i++) if (Math.abs(values[i]!) > threshold) aboveThreshold++;
  let equalSlots = keep - aboveThreshold;
  for (let i = 0; i < n; i++) {
    const magnitude = Math.abs(values[i]!);
    if (magnitude > threshold || (magnitude === threshold && equalSlots-- > 0)) result[i] = values[i]!;
  }
  return result;
}
