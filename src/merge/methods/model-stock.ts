import { f32, type MergeMethod } from "./merge-method.js";

/** mergekit clamps the norm product so all-zero deltas give cos θ = 0 instead of NaN. */
const MIN_NORM_PRODUCT = 1e-6;

/**
 * Model Stock: average two fine-tunes of the same base, then pull the average back toward the
 * base by how much the two deltas disagree: t = 2·cos θ / (1 + cos θ) with θ the angle between
 * the deltas (whole tensor), out = t·avg + (1 − t)·base. Scalars in f64, each tensor operation in f32.
 */
export const modelStock: MergeMethod = {
  id: "model_stock",
  summary: "Model Stock: average A and B, interpolated toward the base by the angle between their deltas",
  reference: "https://arxiv.org/abs/2403.19522",
  inputs: [
    { name: "base", space: "weight" },
    { name: "a", space: "weight" },
    { name: "b", space: "weight" },
  ],
  output: "weight",
  params: [],
  granularity: "tensor",
  apply([base, a, b], _params, out) {
    let dot = 0;
    let normA = 0;
    let normB = 0;
    for (let i = 0; i < out.length; i++) {
      const da = a![i]! - base![i]!;
      const db = b![i]! - base![i]!;
      dot += da * db;
      normA += da * da;
      normB += db * db;
    }
    const cosine = Math.min(
      1,
      Math.max(-1, dot / Math.max(Math.sqrt(normA) * Math.sqrt(normB), MIN_NORM_PRODUCT)),
    );
    const t = (2 * cosine) / (1 + cosine);
    const weightAverage = f32(Number.isFinite(t) ? t : 0);
    const weightBase = f32(1 - weightAverage);
    for (let i = 0; i < out.length; i++) {
      const average = f32(f32(a![i]! + b![i]!) / 2);
      out[i] = f32(average * weightAverage) + f32(base![i]! * weightBase);
    }
  },
};
