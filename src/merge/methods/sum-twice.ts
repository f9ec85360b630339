import type { MergeMethod } from "./merge-method.js";
import { lerpInto } from "./weighted-sum.js";

/** `(1 − β)·((1 − α)·A + α·B) + β·C`: two weighted sums, each rounded to f32 like weighted_sum. */
export const sumTwice: MergeMethod = {
  id: "sum_twice",
  summary: "(1 − β)·((1 − α)·A + α·B) + β·C: weighted sum of A and B, then with C",
  reference: "https://github.com/hako-mikan/sd-webui-supermerger/blob/main/scripts/mergers/mergers.py",
  inputs: [
    { name: "a", space: "weight" },
    { name: "b", space: "weight" },
    { name: "c", space: "weight" },
  ],
  output: "weight",
  params: [
    {
      name: "alpha",
      default: 0.5,
      description: "weight of B in the first sum",
      perBlock: true,
      interpolates: true,
    },
    {
      name: "beta",
      default: 0.5,
      description: "weight of C in the second sum",
      perBlock: true,
      interpolates: true,
    },
  ],
  granularity: "elementwise",
  apply([a, b, c], params, out, context) {
    lerpInto(a!, b!, params.alpha!, out, context.arithmetic);
    lerpInto(out, c!, params.beta!, out, context.arithmetic);
  },
};
