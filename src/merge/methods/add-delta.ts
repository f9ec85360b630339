import { f32, type MergeMethod } from "./merge-method.js";

/** `A + α·D`: apply a delta (from subtract, TIES or DARE) to a model, each operation rounded to f32. */
export const addDelta: MergeMethod = {
  id: "add_delta",
  summary: "A + α·D: apply a delta to a model",
  reference: "https://arxiv.org/abs/2212.04089",
  inputs: [
    { name: "a", space: "weight" },
    { name: "d", space: "delta" },
  ],
  output: "weight",
  params: [
    {
      name: "alpha",
      default: 1,
      description: "how much of the delta to add",
      perBlock: true,
      interpolates: true,
    },
  ],
  granularity: "elementwise",
  apply([a, d], params, out) {
    const alpha = f32(params.alpha!);
    for (let i = 0; i < out.length; i++) out[i] = a![i]! + f32(alpha * d![i]!);
  },
};
