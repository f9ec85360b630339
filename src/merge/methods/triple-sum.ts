import { f32, type MergeMethod } from "./merge-method.js";

/**
 * `(1 − α − β)·A + α·B + β·C`, evaluated left to right in fp32 as supermerger's torch expression
 * `(1 - alpha - beta) * A + alpha * B + beta * C` does.
 */
export const tripleSum: MergeMethod = {
  id: "triple_sum",
  summary: "(1 − α − β)·A + α·B + β·C",
  reference: "https://github.com/hako-mikan/sd-webui-supermerger/blob/main/scripts/mergers/mergers.py",
  inputs: [
    { name: "a", space: "weight" },
    { name: "b", space: "weight" },
    { name: "c", space: "weight" },
  ],
  output: "weight",
  params: [
    { name: "alpha", default: 0.33, description: "weight of B", perBlock: true, interpolates: true },
    { name: "beta", default: 0.33, description: "weight of C", perBlock: true, interpolates: true },
  ],
  granularity: "elementwise",
  apply([a, b, c], params, out) {
    const alpha = params.alpha!;
    const beta = params.beta!;
    const wa = f32(1 - alpha - beta);
    const wb = f32(alpha);
    const wc = f32(beta);
    for (let i = 0; i < out.length; i++) {
      out[i] = f32(f32(a![i]! * wa) + f32(b![i]! * wb)) + f32(c![i]! * wc);
    }
  },
};
