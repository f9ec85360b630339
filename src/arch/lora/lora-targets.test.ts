import { describe, expect, it } from "vitest";
import { GyozaError } from "../../errors.js";
import { getLayout } from "../layouts.js";
import { loraTargets } from "./lora-targets.js";
import {
  type LoraModuleSpec,
  openLora,
  openTensors,
  SD1_KOHYA_MODULES,
  SDXL_KOHYA_MODULES,
} from "./test-support/build-lora.js";

const MODEL = "model.diffusion_model.";

async function targetsOf(
  modules: readonly LoraModuleSpec[],
  options: Parameters<typeof loraTargets>[1] = {},
  naming?: "peft",
) {
  const checkpoint = await openLora(modules, naming ? { naming } : {});
  try {
    return await loraTargets(checkpoint, options);
  } finally {
    await checkpoint.close();
  }
}

async function refusal(promise: Promise<unknown>): Promise<GyozaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GyozaError);
  return error as GyozaError;
}

describe("loraTargets: what a baking step applies", () => {
  it("maps each module of a rank-4 SD 1.x kohya LoRA to its ldm key, with alpha, scale and shapes", async () => {
    const targets = await targetsOf(SD1_KOHYA_MODULES, { base: "sd1" });
    expect(targets.map((t) => [t.module, t.targetKey])).toEqual([
      ["lora_unet_down_blocks_0_attentions_0_proj_in", `${MODEL}input_blocks.1.1.proj_in.weight`],
      [
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
        `${MODEL}input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight`,
      ],
      [
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
        `${MODEL}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight`,
      ],
      [
        "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj",
        `${MODEL}middle_block.1.transformer_blocks.0.ff.net.0.proj.weight`,
      ],
      [
        "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0",
        `${MODEL}output_blocks.11.1.transformer_blocks.0.attn2.to_out.0.weight`,
      ],
      [
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj",
        "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight",
      ],
      [
        "lora_te_text_model_encoder_layers_11_mlp_fc2",
        "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight",
      ],
    ]);
    for (const target of targets) {
      expect(target).toMatchObject({ rank: 4, alpha: 2, alphaMissing: false, scale: 0.5 });
      expect(target.up.shape[1]).toBe(4);
      expect(target.down.shape[0]).toBe(4);
      // the layout shape, or its 2-D view
      const layoutShape = getLayout("sd1-ldm").byKey.get(target.targetKey)!.shape;
      expect(target.targetShape).toEqual(layoutShape);
    }
    expect(targets[0]!.shapeOfDelta).toEqual([320, 320, 1, 1]); // proj_in is a 1x1 convolution in SD 1.x
    expect(targets[2]!.shapeOfDelta).toEqual([320, 768]);
  });

  it("uses the LoRA's own base model when none is asked for", async () => {
    const targets = await targetsOf(SDXL_KOHYA_MODULES);
    expect(targets).toHaveLength(SDXL_KOHYA_MODULES.length);
  });

  it("gives an SDXL te2 q/k/v module the rows of OpenCLIP's in_proj_weight it changes", async () => {
    const targets = await targetsOf(SDXL_KOHYA_MODULES, { base: "sdxl" });
    const k = targets.find((t) => t.module === "lora_te2_text_model_encoder_layers_0_self_attn_k_proj")!;
    expect(k).toMatchObject({
      targetKey: "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
      rows: { part: 1, of: 3 },
      shapeOfDelta: [1280, 1280],
      targetShape: [1280, 1280],
    });
  });

  it("maps diffusers PEFT names (lora_A / lora_B) like kohya's", async () => {
    const peft: LoraModuleSpec[] = [
      {
        name: "unet.down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k",
        out: 640,
        in: 2048,
        alpha: null,
      },
      { name: "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", out: 768, in: 768, alpha: null },
      {
        name: "text_encoder_2.text_model.encoder.layers.0.self_attn.v_proj",
        out: 1280,
        in: 1280,
        alpha: null,
      },
    ];
    const targets = await targetsOf(peft, {}, "peft");
    expect(targets.map((t) => [t.module, t.targetKey, t.rows?.part])).toEqual([
      [
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn2_to_k",
        `${MODEL}input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight`,
        undefined,
      ],
      [
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
        "conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight",
        undefined,
      ],
      [
        "lora_te2_text_model_encoder_layers_0_self_attn_v_proj",
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
        2,
      ],
    ]);
  });

  it("takes a missing alpha as the rank (scale 1) and says so per target", async () => {
    const modules = SD1_KOHYA_MODULES.map((m) => ({ ...m, alpha: null }));
    const targets = await targetsOf(modules);
    for (const target of targets) expect(target).toMatchObject({ alpha: 4, alphaMissing: true, scale: 1 });
  });

  it("takes an alpha of 0 as the rank too (kohya: `if alpha is None or alpha == 0`)", async () => {
    const targets = await targetsOf([{ ...SD1_KOHYA_MODULES[2]!, alpha: 0 }]);
    expect(targets[0]).toMatchObject({ alpha: 4, alphaMissing: true, scale: 1 });
  });

  it("checks targets against the model's own tensors when given", async () => {
    const model = new Map([
      [`${MODEL}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight`, { shape: [320, 768] }],
    ]);
    const ok = await targetsOf([SD1_KOHYA_MODULES[2]!], { base: "sd1", model });
    expect(ok).toHaveLength(1);
    const error = await refusal(
      targetsOf([SD1_KOHYA_MODULES[1]!, SD1_KOHYA_MODULES[2]!], { base: "sd1", model }),
    );
    expect(error.code).toBe("architecture-mismatch");
    expect(error.message).toContain("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q");
    expect(error.message).toContain("which the model does not have");
  });
});

describe("loraTargets refuses bad input before anything is written", () => {
  it("refuses an SDXL LoRA asked about SD 1.x targets, naming both and the evidence", async () => {
    const error = await refusal(targetsOf(SDXL_KOHYA_MODULES, { base: "sd1" }));
    expect(error.code).toBe("architecture-mismatch");
    expect(error.message).toMatch(
      /a LoRA for Stable Diffusion XL cannot change a Stable Diffusion 1\.x model/,
    );
    expect(error.message).toMatch(/context dim 2048|two text encoders/);
    expect(error.fix).toMatch(/trained for Stable Diffusion 1\.x/);
  });

  it("refuses an SD 1.x LoRA for an SDXL model", async () => {
    const error = await refusal(targetsOf(SD1_KOHYA_MODULES, { base: "sdxl" }));
    expect(error.code).toBe("architecture-mismatch");
  });

  it("refuses a module whose up and down disagree on the rank, naming it and both shapes", async () => {
    const broken = { ...SD1_KOHYA_MODULES[1]!, upShape: [320, 8] };
    const error = await refusal(targetsOf([broken, SD1_KOHYA_MODULES[2]!]));
    expect(error.code).toBe("format");
    expect(error.message).toContain(
      "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q: up [320, 8] has rank 8 but down [4, 320] has rank 4",
    );
  });

  it("refuses a module whose up is a linear layer and whose down is a convolution", async () => {
    const broken = { ...SD1_KOHYA_MODULES[0]!, upShape: [320, 4] };
    const error = await refusal(targetsOf([broken, SD1_KOHYA_MODULES[2]!]));
    expect(error.message).toContain(
      "lora_unet_down_blocks_0_attentions_0_proj_in: up [320, 4] is 2-D but down [4, 320, 1, 1] is 4-D",
    );
  });

  it("refuses a module without its down weight", async () => {
    const checkpoint = await openTensors([
      { key: "lora_unet_down_blocks_0_attentions_0_proj_out.lora_up.weight", shape: [320, 4, 1, 1] },
      {
        key: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight",
        shape: [320, 4],
      },
      {
        key: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
        shape: [4, 768],
      },
    ]);
    const error = await refusal(loraTargets(checkpoint));
    expect(error.message).toContain(
      "lora_unet_down_blocks_0_attentions_0_proj_out: has an up weight but no down",
    );
  });

  it("refuses a module whose delta does not fit the weight it changes, with both shapes", async () => {
    const wrong = { ...SD1_KOHYA_MODULES[1]!, out: 640 };
    const error = await refusal(targetsOf([wrong, SD1_KOHYA_MODULES[2]!]));
    expect(error.code).toBe("architecture-mismatch");
    expect(error.message).toContain(
      "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q: its delta [640,320] does not fit model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight [320,320]",
    );
  });

  it("refuses a module name that is no key of the model's layout", async () => {
    const stray = {
      name: "lora_unet_down_blocks_7_attentions_0_proj_in",
      out: 320,
      in: 320,
      kernel: [1, 1] as [number, number],
    };
    const error = await refusal(targetsOf([stray, SD1_KOHYA_MODULES[2]!]));
    expect(error.message).toContain(
      "lora_unet_down_blocks_7_attentions_0_proj_in: names no key of the Stable Diffusion 1.x layout",
    );
  });

  it("refuses LoHa modules: recognised, not bakeable yet", async () => {
    const name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
    const checkpoint = await openTensors([
      { key: `${name}.hada_w1_a`, shape: [320, 8] },
      { key: `${name}.hada_w1_b`, shape: [8, 768] },
      { key: `${name}.hada_w2_a`, shape: [320, 8] },
      { key: `${name}.hada_w2_b`, shape: [8, 768] },
      { key: `${name}.alpha`, shape: [], dtype: "F32" },
    ]);
    const error = await refusal(loraTargets(checkpoint));
    expect(error.message).toContain(
      `${name}: a loha module: recognised, but only LoRA/LoCon modules can be baked`,
    );
  });

  it("refuses DoRA modules (a dora_scale beside up and down): not bakeable yet", async () => {
    const name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
    const checkpoint = await openTensors([
      { key: `${name}.lora_up.weight`, shape: [320, 4] },
      { key: `${name}.lora_down.weight`, shape: [4, 768] },
      { key: `${name}.dora_scale`, shape: [1, 768] },
    ]);
    const error = await refusal(loraTargets(checkpoint));
    expect(error.message).toContain(`${name}: a DoRA module (dora_scale)`);
  });

  it("refuses a LoRA whose base model cannot be told, unless the caller names it", async () => {
    const vague = [
      { name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", out: 320, in: 320 },
    ];
    const error = await refusal(targetsOf(vague));
    expect(error.message).toBe("cannot tell which base model this LoRA was trained for");
    // with a base given, the names and shapes still have to fit it
    expect(await targetsOf(vague, { base: "sd1" })).toHaveLength(1);
  });

  it("refuses a file without LoRA modules", async () => {
    const checkpoint = await openTensors([{ key: "emb_params", shape: [2, 768] }]);
    expect((await refusal(loraTargets(checkpoint))).message).toBe("no LoRA modules in this file");
  });
});
