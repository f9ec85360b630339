import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildLoraFile, type LoraFileOptions } from "../../arch/lora/test-support/build-lora.js";
import { modulesFitting } from "../../arch/lora/test-support/fit-lora.js";
import { type SyntheticOptions, syntheticTensors } from "../../synth/synthetic-model.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";

/**
 * The LoRA bakes cross-checked against torch (test/fixtures/lora-bake): synthetic models with real
 * key names and small shapes (src/synth), and LoRAs with real kohya module names shaped to fit them
 * (diffusers names for SD 1.x, sgm names for SDXL; a 1x1 and a 3x3 convolution, OpenCLIP's packed
 * q/k/v rows, a time_embed weight outside every block, a block weight of 0, two LoRAs on one key, a
 * LoRA without alpha, f16 and f32 factors). `writeLoraBakeInputs` writes them and `cases.json`, which
 * scripts/bake-lora-torch.py reads; the test writes the same files and bakes them with gyoza.
 */
interface LoraSpec {
  file: string;
  base: "sd1" | "sdxl";
  names: readonly string[];
  rank: number;
  /** null: no alpha stored (taken as the rank). */
  alpha: number | null;
  options: LoraFileOptions;
}

export interface LoraBakeCase {
  name: string;
  model: { file: string; synth: SyntheticOptions };
  loras: { file: string; ratio: number; weights?: string }[];
  output: string;
}

const SD1_DETAIL: LoraSpec = {
  file: "sd1-detail.safetensors",
  base: "sd1",
  names: [
    "lora_unet_down_blocks_0_attentions_0_proj_in",
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
    "lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_attn2_to_k",
    "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj",
    "lora_unet_up_blocks_1_attentions_2_transformer_blocks_0_ff_net_2",
    "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0",
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj",
    "lora_te_text_model_encoder_layers_11_mlp_fc2",
    "lora_unet_down_blocks_0_resnets_0_conv1",
    "lora_unet_up_blocks_0_resnets_0_conv1",
    "lora_unet_time_embedding_linear_1",
  ],
  rank: 4,
  alpha: 2,
  options: { dtype: "F16", seed: 101 },
};

const SD1_STYLE: LoraSpec = {
  file: "sd1-style.safetensors",
  base: "sd1",
  names: [
    "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0",
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj",
    "lora_unet_down_blocks_2_attentions_1_transformer_blocks_0_attn1_to_v",
  ],
  rank: 8,
  alpha: null,
  options: { dtype: "F32", seed: 202 },
};

const SDXL_DETAIL: LoraSpec = {
  file: "sdxl-detail.safetensors",
  base: "sdxl",
  names: [
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k",
    "lora_unet_middle_block_1_proj_in",
    "lora_unet_output_blocks_2_1_transformer_blocks_1_ff_net_2",
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
    "lora_te2_text_model_encoder_layers_0_self_attn_k_proj",
    "lora_te2_text_model_encoder_layers_0_self_attn_v_proj",
    "lora_te2_text_model_encoder_layers_30_mlp_fc1",
  ],
  rank: 4,
  alpha: 1,
  options: { dtype: "F16", seed: 303 },
};

const SD1_MODEL: SyntheticOptions = { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: 11 };
const SDXL_MODEL: SyntheticOptions = { layout: "sdxl-sgm", size: "micro", dtype: "F16", seed: 12 };

export const LORA_BAKE_CASES: readonly LoraBakeCase[] = [
  {
    name: "sd1",
    model: { file: "sd1-tiny.safetensors", synth: SD1_MODEL },
    loras: [
      // 17 values: BASE, IN01, IN02, IN04, IN05, IN07, IN08, M00, OUT03 … OUT11 (OUT00 is not named: 0)
      { file: SD1_DETAIL.file, ratio: 0.6, weights: "1,0.5,0,1,0.8,1,1,0.25,1,1,-0.5,1,1,1,1,1,1.2" },
      { file: SD1_STYLE.file, ratio: -0.3 },
    ],
    output: "sd1-baked.safetensors",
  },
  {
    name: "sdxl",
    model: { file: "sdxl-micro.safetensors", synth: SDXL_MODEL },
    // 12 values: BASE, IN04, IN05, IN07, IN08, M00, OUT00 … OUT05
    loras: [{ file: SDXL_DETAIL.file, ratio: 0.8, weights: "0.5,1,1,1,1,0.7,1,1,0.9,1,1,1" }],
    output: "sdxl-baked.safetensors",
  },
];

/** Writes every case's model and LoRAs and `cases.json` into `dir`. */
export async function writeLoraBakeInputs(dir: string): Promise<void> {
  for (const bakeCase of LORA_BAKE_CASES)
    await writeSyntheticCheckpoint(join(dir, bakeCase.model.file), bakeCase.model.synth);
  for (const [spec, synth] of [
    [SD1_DETAIL, SD1_MODEL],
    [SD1_STYLE, SD1_MODEL],
    [SDXL_DETAIL, SDXL_MODEL],
  ] as const) {
    const model = new Map(syntheticTensors(synth).map((tensor) => [tensor.key, tensor]));
    const modules = modulesFitting(spec.names, model, spec.base, { rank: spec.rank, alpha: spec.alpha });
    await writeFile(join(dir, spec.file), buildLoraFile(modules, spec.options));
  }
  await writeFile(join(dir, "cases.json"), `${JSON.stringify(LORA_BAKE_CASES, null, 2)}\n`);
}

/** A case as a gyoza recipe over the files in its folder. */
export function loraBakeRecipe(bakeCase: LoraBakeCase): Record<string, unknown> {
  const inputs: Record<string, { path: string }> = { model: { path: bakeCase.model.file } };
  bakeCase.loras.forEach((lora, i) => {
    inputs[`lora${i + 1}`] = { path: lora.file };
  });
  return {
    gyoza: 1,
    inputs,
    steps: {
      baked: {
        method: "add_lora",
        inputs: { a: "model" },
        loras: bakeCase.loras.map((lora, i) => ({
          input: `lora${i + 1}`,
          ratio: lora.ratio,
          ...(lora.weights ? { weights: lora.weights } : {}),
        })),
      },
    },
    output: { path: bakeCase.output, dtype: "fp16" },
  };
}
