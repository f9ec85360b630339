import { f32, type MergeMethod } from "./merge-method.js";

/**
 * supermerger's "trainDifference": add B − C to A, each element scaled by how far A already is
 * from B relative to how far B moved from C:
 *   scale = |B − A| / (|B − C| + |B − A|)  (0 where both are 0), signed like B − C
 *   out   = A + scale·|B − C|·(α·1.8)
 * All in fp32, as supermerger computes it (`.float()` on every operand).
 */
export const trainDifference: MergeMethod = {
  id: "train_difference",
  summary: "A + (B − C) scaled per element by how much A and B already differ",
  reference:
    "https://github.com/hako-mikan/sd-webui-supermerger/blob/main/scripts/mergers/mergers.py (calcmode trainDifference)",
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
      description: "strength (multiplied by 1.8 as supermerger does)",
      perBlock: true,
      interpolates: true,
    },
  ],
  granularity: "elementwise",
  apply([a, b, c], params, out) {
    // supermerger multiplies the Python float α by 1.8 before torch casts it to f32.
    const strength = f32(params.alpha! * 1.8);
    for (let i = 0; i < out.length; i++) {
      const ai = a![i]!;
      const bi = b![i]!;
      const diff = f32(bi - c![i]!);
      const distanceBC = Math.abs(diff);
      const distanceBA = Math.abs(f32(bi - ai));
      const sum = f32(distanceBC + distanceBA);
      const scale = sum !== 0 ? f32(distanceBA / sum) : 0;
      const newDiff = f32(Math.sign(diff) * scale * distanceBC);
      out[i] = ai + f32(newDiff * strength);
    }
  },
};
