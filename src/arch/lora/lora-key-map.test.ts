import { describe, expect, it } from "vitest";
import { getLayout } from "../layouts.js";
import { LORA_BASES, type LoraBaseId, loraBase, moduleTarget, targetDeltaShape } from "./lora-key-map.js";
import { deltaFits } from "./lora-shapes.js";

const MODEL = "model.diffusion_model.";
const CLIP_L = "cond_stage_model.transformer.text_model.encoder.layers.";

describe("the key a LoRA module changes", () => {
  it.each([
    // SD 1.x, kohya names after the diffusers UNet (kohya sd-scripts networks/lora.py)
    ["sd1", "lora_unet_down_blocks_0_attentions_0_proj_in", `${MODEL}input_blocks.1.1.proj_in.weight`],
    [
      "sd1",
      "lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_attn2_to_k",
      `${MODEL}input_blocks.5.1.transformer_blocks.0.attn2.to_k.weight`,
    ],
    [
      "sd1",
      "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj",
      `${MODEL}middle_block.1.transformer_blocks.0.ff.net.0.proj.weight`,
    ],
    [
      "sd1",
      "lora_unet_up_blocks_1_attentions_2_transformer_blocks_0_attn1_to_out_0",
      `${MODEL}output_blocks.5.1.transformer_blocks.0.attn1.to_out.0.weight`,
    ],
    ["sd1", "lora_unet_down_blocks_1_resnets_0_conv1", `${MODEL}input_blocks.4.0.in_layers.2.weight`],
    [
      "sd1",
      "lora_unet_down_blocks_1_resnets_0_conv_shortcut",
      `${MODEL}input_blocks.4.0.skip_connection.weight`,
    ],
    ["sd1", "lora_unet_up_blocks_2_resnets_1_time_emb_proj", `${MODEL}output_blocks.7.0.emb_layers.1.weight`],
    ["sd1", "lora_unet_down_blocks_2_downsamplers_0_conv", `${MODEL}input_blocks.9.0.op.weight`],
    ["sd1", "lora_unet_up_blocks_0_upsamplers_0_conv", `${MODEL}output_blocks.2.1.conv.weight`],
    ["sd1", "lora_unet_up_blocks_2_upsamplers_0_conv", `${MODEL}output_blocks.8.2.conv.weight`],
    // SD 1.x, names after the ldm UNet
    ["sd1", "lora_unet_input_blocks_1_1_proj_in", `${MODEL}input_blocks.1.1.proj_in.weight`],
    [
      "sd1",
      "lora_unet_output_blocks_11_1_transformer_blocks_0_attn2_to_v",
      `${MODEL}output_blocks.11.1.transformer_blocks.0.attn2.to_v.weight`,
    ],
    ["sd1", "lora_te_text_model_encoder_layers_0_self_attn_q_proj", `${CLIP_L}0.self_attn.q_proj.weight`],
    ["sd1", "lora_te_text_model_encoder_layers_11_mlp_fc2", `${CLIP_L}11.mlp.fc2.weight`],
    // SD 2.x: the same UNet names, OpenCLIP ViT-H under transformers names
    ["sd2", "lora_unet_down_blocks_0_attentions_0_proj_in", `${MODEL}input_blocks.1.1.proj_in.weight`],
    [
      "sd2",
      "lora_te_text_model_encoder_layers_22_self_attn_out_proj",
      "cond_stage_model.model.transformer.resblocks.22.attn.out_proj.weight",
    ],
    [
      "sd2",
      "lora_te_text_model_encoder_layers_3_mlp_fc1",
      "cond_stage_model.model.transformer.resblocks.3.mlp.c_fc.weight",
    ],
    // SDXL: kohya writes sgm UNet names; diffusers PEFT files use diffusers ones
    [
      "sdxl",
      "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k",
      `${MODEL}input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight`,
    ],
    [
      "sdxl",
      "lora_unet_down_blocks_2_attentions_1_transformer_blocks_9_ff_net_2",
      `${MODEL}input_blocks.8.1.transformer_blocks.9.ff.net.2.weight`,
    ],
    [
      "sdxl",
      "lora_unet_up_blocks_1_attentions_2_transformer_blocks_1_attn1_to_q",
      `${MODEL}output_blocks.5.1.transformer_blocks.1.attn1.to_q.weight`,
    ],
    ["sdxl", "lora_unet_up_blocks_0_upsamplers_0_conv", `${MODEL}output_blocks.2.2.conv.weight`],
    ["sdxl", "lora_unet_mid_block_resnets_1_conv2", `${MODEL}middle_block.2.out_layers.3.weight`],
    [
      "sdxl",
      "lora_te1_text_model_encoder_layers_0_mlp_fc1",
      "conditioner.embedders.0.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
    ],
    [
      "sdxl",
      "lora_te2_text_model_encoder_layers_31_self_attn_out_proj",
      "conditioner.embedders.1.model.transformer.resblocks.31.attn.out_proj.weight",
    ],
  ] as const)("%s: %s → %s", (base, module, key) => {
    const target = moduleTarget(module, loraBase(base));
    expect(target?.key).toBe(key);
    expect(target?.rows).toBeUndefined();
  });

  it.each([
    [
      "sd2",
      "lora_te_text_model_encoder_layers_3_self_attn_q_proj",
      "cond_stage_model.model.transformer.resblocks.3.attn.in_proj_weight",
      0,
    ],
    [
      "sd2",
      "lora_te_text_model_encoder_layers_3_self_attn_v_proj",
      "cond_stage_model.model.transformer.resblocks.3.attn.in_proj_weight",
      2,
    ],
    [
      "sdxl",
      "lora_te2_text_model_encoder_layers_5_self_attn_k_proj",
      "conditioner.embedders.1.model.transformer.resblocks.5.attn.in_proj_weight",
      1,
    ],
  ] as const)("%s: %s changes a third of %s's rows (part %i of q, k, v)", (base, module, key, part) => {
    const target = moduleTarget(module, loraBase(base))!;
    expect(target).toMatchObject({ key, rows: { part, of: 3 } });
    expect(targetDeltaShape(target)).toEqual([target.shape[0]! / 3, target.shape[1]]);
  });

  it.each([
    ["sd1", "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"],
    ["sd1", "lora_unet_down_blocks_3_attentions_0_proj_in"],
    ["sd1", "lora_unet_input_blocks_1_1_proj_in_000"],
    ["sdxl", "lora_te_text_model_encoder_layers_0_self_attn_q_proj"],
    ["sdxl", "lora_unet_input_blocks_1_1_proj_in"],
    ["sd2", "lora_te_text_model_encoder_layers_24_mlp_fc1"],
  ] as const)("%s: %s names no key", (base, module) => {
    expect(moduleTarget(module, loraBase(base))).toBeUndefined();
  });
});

/**
 * Every weight a kohya LoRA or LoCon can train (each linear and convolution weight of the UNet and
 * the text encoders: kohya sd-scripts targets Transformer2DModel, ResnetBlock2D, Down/Upsample2D,
 * CLIPAttention and CLIPMLP), named as kohya names it: the kohya single-file layouts hold those
 * modules under their diffusers/transformers names, so their keys give the module names.
 */
function trainableModules(layoutId: string, prefixes: Record<string, string>) {
  const modules: { module: string; shape: readonly number[] }[] = [];
  for (const entry of getLayout(layoutId).entries) {
    const prefix = Object.keys(prefixes).find((p) => entry.key.startsWith(p));
    if (!prefix || !entry.key.endsWith(".weight") || entry.shape.length < 2) continue;
    if (/embeddings\.|text_projection/.test(entry.key)) continue; // embeddings and projections are no targets
    const path = entry.key.slice(prefix.length, -".weight".length);
    modules.push({ module: prefixes[prefix] + path.replaceAll(".", "_"), shape: entry.shape });
  }
  return modules;
}

describe.each([
  ["sd1", "sd1-kohya", { "unet.": "lora_unet_", "te.": "lora_te_" }, 0],
  ["sd1", "sd1-ldm", { "model.diffusion_model.": "lora_unet_" }, 0],
  ["sdxl", "sdxl-kohya", { "unet.": "lora_unet_", "te1.": "lora_te1_", "te2.": "lora_te2_" }, 32 * 3],
] as const)(
  "every module of a %s LoRA named after the %s layout",
  (baseId, layoutId, prefixes, rowShares) => {
    const base = loraBase(baseId as LoraBaseId);
    const modules = trainableModules(layoutId, prefixes);
    const targetLayout = getLayout(base.layout);

    it("covers the UNet and text encoder weights", () => {
      expect(modules.length).toBeGreaterThan(200);
    });

    it(`names a key of the ${base.layout} layout whose shape its delta fits`, () => {
      const misfits: string[] = [];
      for (const { module, shape } of modules) {
        const target = moduleTarget(module, base);
        const entry = target && targetLayout.byKey.get(target.key);
        if (!target || !entry) misfits.push(`${module}: no target`);
        else if (!deltaFits(shape, targetDeltaShape(target, entry.shape)))
          misfits.push(`${module} [${shape}] → ${target.key} [${entry.shape}]`);
      }
      expect(misfits).toEqual([]);
    });

    it("never names one key twice (except the q, k, v thirds of OpenCLIP's in_proj_weight)", () => {
      const seen = new Map<string, string[]>();
      for (const { module } of modules) {
        const target = moduleTarget(module, base)!;
        const id = target.rows ? `${target.key}#${target.rows.part}` : target.key;
        seen.set(id, [...(seen.get(id) ?? []), module]);
      }
      expect([...seen.values()].filter((names) => names.length > 1)).toEqual([]);
      expect(modules.filter(({ module }) => moduleTarget(module, base)!.rows).length).toBe(rowShares);
    });
  },
);

describe("the LoRA bases data", () => {
  it("lists SD 1.x, SD 2.x and SDXL, each over a reference layout with no two keys alike once '.' reads '_'", () => {
    expect(LORA_BASES.map((base) => base.id)).toEqual(["sd1", "sd2", "sdxl"]);
    for (const base of LORA_BASES) expect(() => moduleTarget("lora_unet_x", base)).not.toThrow();
  });
});
