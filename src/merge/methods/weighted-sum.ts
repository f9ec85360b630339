import { fusedMultiplyAddF32 } from "../../kernels/fused-multiply-add.js";
import { f32, type MergeMethod } from "./merge-method.js";

/**
 * `(1 − α)·A + α·B`. fp32 mode is torch's `((1 − a) * A.float() + a * B.float())`: the scalars are
 * cast to f32 first and every product and sum rounds to f32. lerp mode is `torch.lerp(A, B, α)` in
 * fp32 as supermerger calls it: `A + w(B − A)` when |w| < 0.5, else `B − (B − A)(1 − w)`,
 * each evaluated as one fused multiply-add like torch's CPU kernel.
 */
export const weightedSum: MergeMethod = {
  id: "weighted_sum",
  summary: "(1 − α)·A + α·B: the classic block-weight merge; α = 0 is pure A",
  reference: "https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/master/modules/extras.py",
  inputs: [
    { name: "a", space: "weight" },
    { name: "b", space: "weight" },
  ],
  output: "weight",
  params: [
    {
      name: "alpha",
      default: 0.5,
      description: "weight of B (0 = A, 1 = B)",
      perBlock: true,
      interpolates: true,
    },
  ],
  granularity: "elementwise",
  kernelOp: (arithmetic) => (arithmetic === "fp32" ? "weighted-sum" : "lerp"),
  // GyozaMix's texture-over-composition: two fp32 sums in one pass (kernels' nestedWeightedSum).
  fusions: ["nested-weighted-sum"],
  apply([a, b], params, out, context) {
    lerpInto(a!, b!, params.alpha!, out, context.arithmetic);
  },
};

/** Shared by weighted_sum, sum_twice and slerp's near-parallel fallback. */
export function lerpInto(
  a: Float32Array,
  b: Float32Array,
  alpha: number,
  out: Float32Array,
  arithmetic: "fp32" | "lerp",
): void {
  const n = out.length;
  if (arithmetic === "lerp") {
    // torch's CPU kernel (aten/src/ATen/native/cpu/LerpKernel.cpp, lerp_vec) fuses the multiply-add:
    // |w| < 0.5 ? fma(w, B − A, A) : fma(w − 1, B − A, B). Checked against torch 1.13's torch.lerp.
    const w = f32(alpha);
    const small = Math.abs(w) < 0.5;
    const coefficient = small ? w : f32(w - 1);
    for (let i = 0; i < n; i++) {
      out[i] = fusedMultiplyAddF32(coefficient, f32(b[i]! - a[i]!), small ? a[i]! : b[i]!);
    }
    return;
  }
  const w0 = f32(1 - alpha);
  const w1 = f32(alpha);
  // Float32Array stores round each sum to f32; the products need their own rounding.
  for (let i = 0; i < n; i++) out[i] = f32(a[i]! * w0) + f32(b[i]! * w1);
}
