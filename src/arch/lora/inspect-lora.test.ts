import { describe, expect, it } from "vitest";
import { openCheckpoint } from "../../io/open-checkpoint.js";
import type { Checkpoint } from "../../io/tensor.js";
import { FIXTURE_DIRS } from "../../test-support/fixture-dirs.js";
import { inspectLora } from "./inspect-lora.js";
import {
  type LoraFileOptions,
  type LoraModuleSpec,
  openLora,
  openTensors,
  SD1_KOHYA_MODULES,
  SDXL_KOHYA_MODULES,
} from "./test-support/build-lora.js";

async function reportOf(checkpoint: Promise<Checkpoint>) {
  const opened = await checkpoint;
  try {
    return (await inspectLora(opened))!;
  } finally {
    await opened.close();
  }
}

const lora = (modules: readonly LoraModuleSpec[], options: LoraFileOptions = {}) =>
  reportOf(openLora(modules, options));

/** The SD 1.x modules under their ldm UNet names, as older converters write them. */
const SD1_LDM_NAMED: LoraModuleSpec[] = [
  { name: "lora_unet_input_blocks_1_1_proj_in", out: 320, in: 320, kernel: [1, 1] },
  { name: "lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k", out: 320, in: 768 },
  { name: "lora_unet_middle_block_1_transformer_blocks_0_ff_net_0_proj", out: 10240, in: 1280 },
  { name: "lora_unet_output_blocks_11_1_transformer_blocks_0_attn2_to_out_0", out: 320, in: 320 },
];

const SD2_MODULES: LoraModuleSpec[] = [
  { name: "lora_unet_down_blocks_0_attentions_0_proj_in", out: 320, in: 320 },
  { name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v", out: 320, in: 1024 },
  { name: "lora_te_text_model_encoder_layers_0_self_attn_q_proj", out: 1024, in: 1024 },
  { name: "lora_te_text_model_encoder_layers_0_self_attn_k_proj", out: 1024, in: 1024 },
];

describe("inspectLora", () => {
  it("reads a rank-4 SD 1.x kohya LoRA: format, base by evidence, ranks, alphas, targets per block", async () => {
    const report = await lora(SD1_KOHYA_MODULES);
    expect(report).toMatchObject({
      format: "kohya",
      naming: "kohya",
      unetNames: "diffusers",
      algorithms: { lora: 7 },
      base: { id: "sd1", name: "Stable Diffusion 1.x", decidedBy: "shapes" },
      modules: { total: 7, unet: 5, textEncoder: 2, textEncoder2: 0, convolutions: 1 },
      rank: { common: 4, values: { "4": 7 } },
      alpha: { common: 2, values: { "2": 7 }, missing: 0 },
      scale: 0.5,
      targets: {
        mapped: 7,
        unmapped: 0,
        blocks: { IN01: 3, M00: 1, OUT11: 1 },
        textEncoder: 2,
        textEncoder2: 0,
      },
      issues: [],
    });
    expect(report.base.evidence).toEqual([
      "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k [320, 768]: cross-attention context dim 768 (CLIP ViT-L/14)",
      "lora_te_text_model_encoder_layers_0_self_attn_q_proj [768, 768]: text encoder width 768 (CLIP ViT-L/14)",
      "lora_unet_down_blocks_0_attentions_0_proj_in [320, 320, 1, 1]: proj_in is a 1x1 convolution (SD 1.x; SD 2.x and SDXL use a linear layer)",
    ]);
    expect(report.perModule[0]).toEqual({
      module: "lora_unet_down_blocks_0_attentions_0_proj_in",
      algorithm: "lora",
      group: "unet",
      rank: 4,
      alpha: 2,
      deltaShape: [320, 320, 1, 1],
      targetKey: "model.diffusion_model.input_blocks.1.1.proj_in.weight",
    });
    expect(report.training).toBeUndefined();
  });

  it("says an ldm-named SD 1.x LoRA lands on the same blocks", async () => {
    const report = await lora(SD1_LDM_NAMED);
    expect(report).toMatchObject({ unetNames: "ldm", base: { id: "sd1" } });
    expect(report.targets.blocks).toEqual({ IN01: 2, M00: 1, OUT11: 1 });
  });

  it("tells SDXL by its two text encoders and 2048-wide cross-attention", async () => {
    const report = await lora(SDXL_KOHYA_MODULES);
    expect(report).toMatchObject({
      base: { id: "sdxl", decidedBy: "shapes" },
      unetNames: "ldm",
      modules: { total: 7, unet: 4, textEncoder: 1, textEncoder2: 2 },
      targets: { mapped: 7, blocks: { IN04: 2, M00: 1, OUT02: 1 }, textEncoder: 1, textEncoder2: 2 },
    });
    expect(report.perModule.find((m) => m.module.endsWith("self_attn_k_proj"))).toMatchObject({
      targetKey: "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
      rows: { part: 1, of: 3 },
    });
  });

  it("tells SD 2.x by its 1024-wide cross-attention and text encoder, and maps q/k onto OpenCLIP's in_proj", async () => {
    const report = await lora(SD2_MODULES);
    expect(report.base).toMatchObject({ id: "sd2", decidedBy: "shapes" });
    expect(report.targets).toMatchObject({ mapped: 4, textEncoder: 2 });
    expect(report.issues).toEqual([]);
  });

  it("reads a diffusers PEFT LoRA (lora_A / lora_B, no alphas) as peft, alpha taken as rank", async () => {
    const peft: LoraModuleSpec[] = [
      {
        name: "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
        out: 320,
        in: 320,
        alpha: null,
      },
      {
        name: "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k",
        out: 320,
        in: 768,
        alpha: null,
      },
    ];
    const report = await lora(peft, { naming: "peft" });
    expect(report.format).toBe("peft");
    expect(report.alpha).toEqual({ common: 4, values: { "4": 2 }, missing: 2 });
    expect(report.issues.map((i) => i.message)).toContain(
      "alpha missing: taken as rank (scale 1, kohya's convention) for all 2 modules: lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q, lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
    );
  });

  it("calls a LoRA trained with LyCORIS (ss_network_module lycoris.kohya) LoCon, and counts its 3x3 convolutions", async () => {
    const modules = [
      ...SD1_KOHYA_MODULES.slice(0, 3),
      {
        name: "lora_unet_down_blocks_1_resnets_0_conv1",
        out: 640,
        in: 320,
        kernel: [3, 3] as [number, number],
      },
    ];
    const report = await lora(modules, {
      metadata: { ss_network_module: "lycoris.kohya", ss_network_args: '{"algo": "locon", "conv_dim": "4"}' },
    });
    expect(report.format).toBe("lycoris-locon");
    expect(report.modules.convolutions).toBe(2);
    expect(report.targets.blocks).toEqual({ IN01: 3, IN04: 1 });
    expect(report.training?.networkArgs).toEqual({ algo: "locon", conv_dim: "4" });
  });

  it("recognises LoHa modules: rank from the factors, delta shape, target", async () => {
    const name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
    const report = await reportOf(
      openTensors([
        { key: `${name}.hada_w1_a`, shape: [320, 8] },
        { key: `${name}.hada_w1_b`, shape: [8, 768] },
        { key: `${name}.hada_w2_a`, shape: [320, 8] },
        { key: `${name}.hada_w2_b`, shape: [8, 768] },
        { key: `${name}.alpha`, shape: [], dtype: "F32" },
      ]),
    );
    expect(report).toMatchObject({ format: "loha", algorithms: { loha: 1 }, base: { id: "sd1" } });
    expect(report.perModule[0]).toMatchObject({
      rank: 8,
      deltaShape: [320, 768],
      targetKey: expect.stringContaining("attn2.to_k"),
    });
  });

  it("recognises LoKr modules: kron(w1, w2_a @ w2_b) gives the delta shape", async () => {
    const name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
    const report = await reportOf(
      openTensors([
        { key: `${name}.lokr_w1`, shape: [4, 8] },
        { key: `${name}.lokr_w2_a`, shape: [80, 2] },
        { key: `${name}.lokr_w2_b`, shape: [2, 96] },
      ]),
    );
    expect(report).toMatchObject({ format: "lokr", base: { id: "sd1" } });
    expect(report.perModule[0]).toMatchObject({ rank: 2, deltaShape: [320, 768] });
  });

  it("trusts the shapes over the training metadata, and says they disagree", async () => {
    const report = await lora(SD1_KOHYA_MODULES, { metadata: { ss_base_model_version: "sdxl_base_v1-0" } });
    expect(report.base.id).toBe("sd1");
    expect(report.issues).toContainEqual({
      severity: "warning",
      code: "base-conflict",
      message:
        "the training metadata says sdxl (metadata ss_base_model_version = sdxl_base_v1-0), but the module shapes say sd1: the shapes are trusted",
    });
  });

  it("falls back on the training metadata when the shapes say nothing", async () => {
    const vague = [
      { name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", out: 320, in: 320 },
    ];
    const report = await lora(vague, { metadata: { ss_base_model_version: "sd_v1", ss_v2: "False" } });
    expect(report.base).toEqual({
      id: "sd1",
      name: "Stable Diffusion 1.x",
      evidence: ["metadata ss_base_model_version = sd_v1"],
      decidedBy: "metadata",
    });
    expect((await lora(vague)).base.id).toBe("unknown");
  });

  it("reports a rank mismatch as an error naming the module, and keeps reading the rest", async () => {
    const broken = { ...SD1_KOHYA_MODULES[1]!, downShape: [8, 320] };
    const report = await lora([broken, SD1_KOHYA_MODULES[2]!]);
    expect(report.issues).toContainEqual({
      severity: "error",
      code: "rank-mismatch",
      module: broken.name,
      message: `${broken.name}: up [320, 4] has rank 4 but down [8, 320] has rank 8`,
    });
    expect(report.base.id).toBe("sd1");
  });

  it("summarises a pickled LoRA (lora_many_tensors.pt): 120 modules of rank 2, ss_tag_frequency from the pickle", async () => {
    const report = await reportOf(openCheckpoint(`${FIXTURE_DIRS.ckpt}lora_many_tensors.pt`));
    expect(report).toMatchObject({
      format: "kohya",
      modules: { total: 120, unet: 120 },
      rank: { common: 2, values: { "2": 120 } },
      base: { id: "unknown" },
    });
    expect(report.training?.tags).toMatchObject({ folders: 1, distinct: 1005 });
    expect(report.training?.tags?.top[0]).toEqual({ tag: "tag_0709", count: 1008 });
  });

  it("is undefined for a file without LoRA modules", async () => {
    expect(await reportOf(openTensors([{ key: "emb_params", shape: [2, 768] }]))).toBeUndefined();
  });
});
