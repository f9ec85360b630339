import type { MergeMethod } from "./merge-method.js";

/**
 * `W + Σ ratio · block weight · (alpha / rank) · up @ down`: LoRAs baked into a model, one term per
 * LoRA module that changes W, as kohya's merge_lora.py and supermerger's "Merge to Checkpoint" do. The
 * LoRA files are the step's `loras:`, not inputs of the method: their weight changes are planned per
 * key (src/plan) and computed by the kernels' low-rank update (src/kernels/merge-kernel.ts).
 */
export const addLora: MergeMethod = {
  id: "add_lora",
  summary: "A + Σ ratio·(alpha/rank)·up @ down: bake LoRAs (the step's loras:) into a model",
  reference: "https://github.com/kohya-ss/sd-scripts/blob/main/networks/merge_lora.py",
  inputs: [{ name: "a", space: "weight" }],
  output: "weight",
  params: [],
  granularity: "elementwise",
  bakesLoras: true,
  // a key no LoRA changes is the model's own
  apply([a], _params, out) {
    out.set(a!);
  },
};
