import { counterStream, keyHash } from "./counter-random.js";
import { f32, type MergeMethod } from "./merge-method.js";

/**
 * DARE (Drop And REscale): drop each element of a delta with probability p, divide the survivors
 * by 1 − p so the expected delta is unchanged. Draws come from (seed, key, element index), so a
 * rerun, or the same tensor processed in other ranges, drops exactly the same elements.
 */
export const dare: MergeMethod = {
  id: "dare",
  summary: "drop each delta element with probability p and rescale the rest by 1/(1 − p)",
  reference: "https://arxiv.org/abs/2311.03099",
  inputs: [{ name: "a", space: "delta" }],
  output: "delta",
  params: [{ name: "p", default: 0.5, min: 0, max: 0.99, description: "drop probability", perBlock: true }],
  granularity: "elementwise",
  apply([a], params, out, context) {
    const p = params.p!;
    const keep = f32(1 - p);
    const draw = counterStream(context.seed, keyHash(context.key));
    for (let i = 0; i < out.length; i++) {
      const drop = draw(context.elementOffset + i) < p;
      out[i] = drop ? 0 : a![i]! / keep;
    }
  },
};
