import { f32, type MergeMethod } from "./merge-method.js";
import { lerpInto } from "./weighted-sum.js";

/** Above this |cos θ| the tensors are treated as parallel and blended linearly (mergekit's threshold). */
const PARALLEL_DOT_THRESHOLD = 0.9995;

/**
 * Spherical interpolation of two whole tensors treated as vectors: the angle comes from the
 * normalised tensors, the weights sin((1 − t)θ)/sin θ and sin(tθ)/sin θ apply to the raw ones.
 * Scalars are computed in f64 and rounded to f32 once, as mergekit computes them with numpy.
 */
export const slerp: MergeMethod = {
  id: "slerp",
  summary: "spherical interpolation between A and B (α = 0 is A)",
  reference: "https://github.com/arcee-ai/mergekit/blob/main/mergekit/merge_methods/slerp.py",
  inputs: [
    { name: "a", space: "weight" },
    { name: "b", space: "weight" },
  ],
  output: "weight",
  params: [
    {
      name: "alpha",
      default: 0.5,
      description: "interpolation factor t (0 = A, 1 = B)",
      perBlock: true,
      interpolates: true,
    },
  ],
  granularity: "tensor",
  apply([a, b], params, out, context) {
    const t = params.alpha!;
    let dot = 0;
    let normA = 0;
    let normB = 0;
    for (let i = 0; i < out.length; i++) {
      dot += a![i]! * b![i]!;
      normA += a![i]! * a![i]!;
      normB += b![i]! * b![i]!;
    }
    const cosine = normA > 0 && normB > 0 ? dot / (Math.sqrt(normA) * Math.sqrt(normB)) : 1;
    if (Math.abs(cosine) > PARALLEL_DOT_THRESHOLD) {
      lerpInto(a!, b!, t, out, context.arithmetic);
      return;
    }
    const theta = Math.acos(cosine);
    const sinTheta = Math.sin(theta);
    const weightA = f32(Math.sin((1 - t) * theta) / sinTheta);
    const weightB = f32(Math.sin(t * theta) / sinTheta);
    for (let i = 0; i < out.length; i++) out[i] = f32(a![i]! * weightA) + f32(b![i]! * weightB);
  },
};
