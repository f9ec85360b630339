import { f32, type MergeMethod } from "./merge-method.js";

/** `A + α(B − C)` in fp32 with each operation rounded: `f32(A + f32(α·f32(B − C)))`. */
export const addDifference: MergeMethod = {
  id: "add_difference",
  summary: "A + α·(B − C): add what B learned on top of its base C to A",
  reference: "https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/master/modules/extras.py",
  inputs: [
    { name: "a", space: "weight" },
    { name: "b", space: "weight" },
    { name: "c", space: "weight" },
  ],
  output: "weight",
  params: [
    {
      name: "alpha",
      default: 1,
      description: "how much of B − C to add",
      perBlock: true,
      interpolates: true,
    },
  ],
  granularity: "elementwise",
  kernelOp: () => "add-difference",
  apply([a, b, c], params, out) {
    const alpha = f32(params.alpha!);
    for (let i = 0; i < out.length; i++) out[i] = a![i]! + f32(alpha * f32(b![i]! - c![i]!));
  },
};
