import { isMergedTensorKey } from "../block-map.js";
import { type CosineVariant, columnCount, combinedSimilarity, similarityRange } from "./cosine-similarity.js";
import { f32, type MergeMethod } from "./merge-method.js";

/** supermerger leaves the VAE out of its cosine merges ("to get better results"): A's is kept. */
const SKIPPED_PREFIX = "first_stage_model.";

/**
 * Builds cosineA / cosineB: per column k = clip((sim − sim_min) / (sim_max − sim_min) − α', 0, 1)
 * with α' = |α| for cosineA and α for cosineB, then out = B·(1 − k) + A·k. k is A's share: the
 * more alike the tensors, the more A is kept.
 */
function cosineMerge(variant: CosineVariant, summary: string): MergeMethod {
  return {
    id: variant,
    summary,
    reference: "https://github.com/hako-mikan/sd-webui-supermerger/blob/main/calcmode_en.md",
    inputs: [
      { name: "a", space: "weight" },
      { name: "b", space: "weight" },
    ],
    output: "weight",
    params: [
      { name: "alpha", default: 0, description: "subtracted from the normalised similarity", perBlock: true },
      {
        name: "sim_min",
        default: 0,
        description: "low end of the similarity range (the engine's pre-pass over all keys)",
        perBlock: false,
      },
      {
        name: "sim_max",
        default: 1,
        description: "high end of the similarity range (the engine's pre-pass over all keys)",
        perBlock: false,
      },
    ],
    granularity: "tensor",
    // supermerger measures every model key except the VAE; gyoza measures the tensors it merges.
    prepass: {
      includes: (key) => isMergedTensorKey(key) && !key.startsWith(SKIPPED_PREFIX),
      measure: ([a, b], context) =>
        context.shape.length === 0 ? new Float64Array(0) : combinedSimilarity(variant, a!, b!, context.shape),
      finish: (measurements) => {
        const { min, max } = similarityRange(measurements);
        return { sim_min: min, sim_max: max };
      },
    },
    apply([a, b], params, out, context) {
      if (context.key.startsWith(SKIPPED_PREFIX) || context.shape.length === 0) {
        out.set(a!);
        return;
      }
      const alpha = variant === "cosine_a" ? Math.abs(params.alpha!) : params.alpha!;
      const low = params.sim_min!;
      const span = params.sim_max! - low;
      const similarity = combinedSimilarity(variant, a!, b!, context.shape);
      const columns = columnCount(context.shape, out.length);
      const keepA = new Float32Array(columns);
      const keepB = new Float32Array(columns);
      for (let j = 0; j < columns; j++) {
        const k = f32(Math.min(1, Math.max(0, (similarity[j]! - low) / span - alpha)));
        keepA[j] = k;
        keepB[j] = f32(1 - k);
      }
      for (let i = 0; i < out.length; i++) {
        const j = i % columns;
        out[i] = f32(b![i]! * keepB[j]!) + f32(a![i]! * keepA[j]!);
      }
    },
  };
}

export const cosineA: MergeMethod = cosineMerge(
  "cosine_a",
  "supermerger cosineA: keeps A where A and B are alike, takes B where they differ (favours A's structure)",
);

export const cosineB: MergeMethod = cosineMerge(
  "cosine_b",
  "supermerger cosineB: like cosineA on the raw tensors (favours B's structure)",
);
