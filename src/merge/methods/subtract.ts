import type { MergeMethod } from "./merge-method.js";

/** `A − B` as a delta (a task vector): the input of TIES and DARE. */
export const subtract: MergeMethod = {
  id: "subtract",
  summary: "A − B as a delta: what A learned relative to its base B",
  reference: "https://arxiv.org/abs/2212.04089",
  inputs: [
    { name: "a", space: "weight" },
    { name: "b", space: "weight" },
  ],
  output: "delta",
  params: [],
  granularity: "elementwise",
  apply([a, b], _params, out) {
    for (let i = 0; i < out.length; i++) out[i] = a![i]! - b![i]!;
  },
};
