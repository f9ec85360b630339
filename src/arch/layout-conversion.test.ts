import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import type { DType } from "../io/dtype.js";
import type { TensorShapeInfo } from "./detect.js";
import {
  BUILTIN_LAYOUT_CONVERSIONS,
  convertKey,
  findLayoutConversion,
  type LayoutConversion,
  planLayoutConversion,
} from "./layout-conversion.js";
import { getLayout } from "./layouts.js";

/** Every key of a reference layout (optional ones too) with its reference shape and dtype. */
function referenceTensors(layoutId: string): Map<string, TensorShapeInfo> {
  return new Map(getLayout(layoutId).entries.map((e) => [e.key, { dtype: e.dtype, shape: e.shape }]));
}

function conversion(from: string): LayoutConversion {
  const found = findLayoutConversion(from, "ldm");
  if (!found) throw new Error(`no conversion from ${from}`);
  return found;
}

describe.each(BUILTIN_LAYOUT_CONVERSIONS.map((c) => [c.from, c.to, c] as const))(
  "the %s → %s rules",
  (from, to, rules) => {
    const source = referenceTensors(from);
    const target = getLayout(to);
    const planned = planLayoutConversion(source, rules);

    it("map every key of the source layout to a key of the target layout with its reference shape and dtype", () => {
      for (const converted of planned) {
        const entry = target.byKey.get(converted.key);
        expect(entry?.key, `${converted.sources.join(" + ")} → ${converted.key}`).toBe(converted.key);
        expect(converted.shape, converted.key).toEqual(entry!.shape);
        const dtypes = converted.sources.map((key) => source.get(key)!.dtype);
        for (const dtype of dtypes) expect(dtype, converted.key).toBe(entry!.dtype);
      }
    });

    it("use each source key exactly once and give each target key one origin", () => {
      const used = planned.flatMap((converted) => converted.sources).sort();
      expect(used).toEqual([...source.keys()].sort());
      expect(new Set(planned.map((c) => c.key)).size).toBe(planned.length);
    });

    it("produce every key the target layout requires", () => {
      const produced = new Set(planned.map((c) => c.key));
      const required = target.entries.filter((e) => !e.optional).map((e) => e.key);
      expect(required.filter((key) => !produced.has(key))).toEqual([]);
    });

    it("fill in CLIP position_ids (int64 [1, 77] in the target layout) only where the source lacks them", () => {
      expect(planned.filter((c) => c.op === "fill").map((c) => c.key)).toEqual(
        Object.keys(rules.fill).filter((key) => !planned.some((c) => c.key === key && c.op !== "fill")),
      );
      const withoutIds = new Map([...source].filter(([key]) => !key.endsWith("position_ids")));
      const filled = planLayoutConversion(withoutIds, rules).filter((c) => c.op === "fill");
      expect(filled.map((c) => c.key)).toEqual(Object.keys(rules.fill));
      for (const fill of filled) {
        expect(target.byKey.get(fill.key)?.dtype).toBe("I64");
        expect(target.byKey.get(fill.key)?.shape).toEqual(fill.shape);
      }
    });
  },
);

describe("what the rules do beyond renaming", () => {
  it("reshapes exactly the SD 1.x VAE mid-block attention q/k/v/proj_out weights into 1x1 convolutions", () => {
    const planned = planLayoutConversion(referenceTensors("sd1-kohya"), conversion("sd1-kohya"));
    const reshaped = planned.filter((c) => c.op === "linear-to-conv").map((c) => c.key);
    expect(reshaped.sort()).toEqual(
      ["encoder", "decoder"]
        .flatMap((side) =>
          ["q", "k", "v", "proj_out"].map((name) => `first_stage_model.${side}.mid.attn_1.${name}.weight`),
        )
        .sort(),
    );
    for (const key of reshaped) expect(planned.find((c) => c.key === key)!.shape).toEqual([512, 512, 1, 1]);
    expect(planned.filter((c) => c.op !== "rename" && c.op !== "linear-to-conv").map((c) => c.op)).toEqual([
      "fill",
    ]);
  });

  it("joins SDXL te2's q, k, v into OpenCLIP's in_proj (in that order) and transposes text_projection", () => {
    const planned = planLayoutConversion(referenceTensors("sdxl-kohya"), conversion("sdxl-kohya"));
    const joined = planned.filter((c) => c.op === "concat");
    expect(joined).toHaveLength(64);
    const layer5 = "conditioner.embedders.1.model.transformer.resblocks.5.attn.in_proj_weight";
    expect(planned.find((c) => c.key === layer5)).toEqual({
      key: layer5,
      sources: ["q", "k", "v"].map((p) => `te2.text_model.encoder.layers.5.self_attn.${p}_proj.weight`),
      shape: [3840, 1280],
      op: "concat",
    });
    expect(planned.filter((c) => c.op === "transpose").map((c) => [c.sources[0], c.key])).toEqual([
      ["te2.text_projection.weight", "conditioner.embedders.1.model.text_projection"],
    ]);
  });

  // Blocks whose tensors share shapes could be swapped without any shape noticing: these pairs
  // pin the block arithmetic to the well-known diffusers → original conversion.
  it.each([
    [
      "unet.down_blocks.0.resnets.0.norm1.weight",
      "model.diffusion_model.input_blocks.1.0.in_layers.0.weight",
    ],
    [
      "unet.down_blocks.1.attentions.1.proj_in.weight",
      "model.diffusion_model.input_blocks.5.1.proj_in.weight",
    ],
    ["unet.down_blocks.2.downsamplers.0.conv.weight", "model.diffusion_model.input_blocks.9.0.op.weight"],
    ["unet.down_blocks.3.resnets.1.conv2.bias", "model.diffusion_model.input_blocks.11.0.out_layers.3.bias"],
    [
      "unet.mid_block.resnets.1.time_emb_proj.weight",
      "model.diffusion_model.middle_block.2.emb_layers.1.weight",
    ],
    ["unet.up_blocks.0.resnets.2.conv1.weight", "model.diffusion_model.output_blocks.2.0.in_layers.2.weight"],
    ["unet.up_blocks.0.upsamplers.0.conv.weight", "model.diffusion_model.output_blocks.2.1.conv.weight"],
    ["unet.up_blocks.2.upsamplers.0.conv.bias", "model.diffusion_model.output_blocks.8.2.conv.bias"],
    [
      "unet.up_blocks.1.resnets.2.conv_shortcut.weight",
      "model.diffusion_model.output_blocks.5.0.skip_connection.weight",
    ],
    [
      "unet.up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k.weight",
      "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight",
    ],
    ["unet.time_embedding.linear_2.bias", "model.diffusion_model.time_embed.2.bias"],
    ["unet.conv_norm_out.weight", "model.diffusion_model.out.0.weight"],
    ["vae.decoder.up_blocks.0.resnets.1.conv1.weight", "first_stage_model.decoder.up.3.block.1.conv1.weight"],
    [
      "vae.decoder.up_blocks.3.resnets.0.conv_shortcut.weight",
      "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight",
    ],
    ["vae.decoder.up_blocks.2.upsamplers.0.conv.bias", "first_stage_model.decoder.up.1.upsample.conv.bias"],
    [
      "vae.encoder.down_blocks.2.downsamplers.0.conv.weight",
      "first_stage_model.encoder.down.2.downsample.conv.weight",
    ],
    ["vae.encoder.mid_block.resnets.1.norm2.bias", "first_stage_model.encoder.mid.block_2.norm2.bias"],
    [
      "vae.encoder.mid_block.attentions.0.to_out.0.weight",
      "first_stage_model.encoder.mid.attn_1.proj_out.weight",
    ],
    ["vae.decoder.mid_block.attentions.0.query.weight", "first_stage_model.decoder.mid.attn_1.q.weight"],
    ["vae.encoder.conv_norm_out.bias", "first_stage_model.encoder.norm_out.bias"],
    [
      "te.text_model.final_layer_norm.weight",
      "cond_stage_model.transformer.text_model.final_layer_norm.weight",
    ],
  ])("names %s %s in the ldm layout", (from, to) => {
    expect(convertKey(from, conversion("sd1-kohya"))?.key).toBe(to);
  });

  it.each([
    [
      "te2.text_model.encoder.layers.31.mlp.fc2.bias",
      "conditioner.embedders.1.model.transformer.resblocks.31.mlp.c_proj.bias",
    ],
    [
      "te2.text_model.encoder.layers.0.layer_norm1.weight",
      "conditioner.embedders.1.model.transformer.resblocks.0.ln_1.weight",
    ],
    [
      "te2.text_model.encoder.layers.7.self_attn.v_proj.bias",
      "conditioner.embedders.1.model.transformer.resblocks.7.attn.in_proj_bias",
    ],
    [
      "te2.text_model.embeddings.position_embedding.weight",
      "conditioner.embedders.1.model.positional_embedding",
    ],
    [
      "te1.text_model.embeddings.position_ids",
      "conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
    ],
    ["unet.label_emb.0.2.weight", "model.diffusion_model.label_emb.0.2.weight"],
  ])("names SDXL's %s %s in the sgm layout", (from, to) => {
    expect(convertKey(from, conversion("sdxl-kohya"))?.key).toBe(to);
  });
});

describe("keys the rules refuse", () => {
  const tensor = (shape: number[], dtype: DType = "F16"): TensorShapeInfo => ({ dtype, shape });

  it("refuses a key no rule names, naming it, instead of passing it through", () => {
    const tensors = new Map([
      ["unet.conv_in.weight", tensor([320, 4, 3, 3])],
      ["unet.some_adapter.weight", tensor([4])],
    ]);
    expect(() => planLayoutConversion(tensors, conversion("sd1-kohya"), "x.safetensors")).toThrow(
      /1 keys have no name in the sd1-ldm layout \(e\.g\. unet\.some_adapter\.weight\)/,
    );
  });

  it("refuses a block number the arithmetic turns negative (an up block that SD 1.x does not have)", () => {
    expect(
      convertKey("vae.decoder.up_blocks.4.resnets.0.conv1.weight", conversion("sd1-kohya")),
    ).toBeUndefined();
  });

  it("refuses one tensor stored under its old and its new diffusers name", () => {
    const tensors = new Map([
      ["vae.decoder.mid_block.attentions.0.to_q.weight", tensor([512, 512])],
      ["vae.decoder.mid_block.attentions.0.query.weight", tensor([512, 512])],
    ]);
    let error: unknown;
    try {
      planLayoutConversion(tensors, conversion("sd1-kohya"));
    } catch (caught) {
      error = caught;
    }
    expect(isGyozaError(error, "format")).toBe(true);
    expect((error as Error).message).toMatch(
      /to_q\.weight and .*query\.weight both become .*attn_1\.q\.weight/,
    );
  });

  it("refuses an SDXL in_proj whose v part is missing", () => {
    const tensors = new Map([
      ["te2.text_model.encoder.layers.0.self_attn.q_proj.weight", tensor([1280, 1280])],
      ["te2.text_model.encoder.layers.0.self_attn.k_proj.weight", tensor([1280, 1280])],
    ]);
    expect(() => planLayoutConversion(tensors, conversion("sdxl-kohya"))).toThrow(
      /needs 3 parts, .* has no part 2/,
    );
  });

  it("refuses q, k, v parts of different widths or dtypes", () => {
    const layer = "te2.text_model.encoder.layers.0.self_attn";
    const tensors = new Map([
      [`${layer}.q_proj.weight`, tensor([1280, 1280])],
      [`${layer}.k_proj.weight`, tensor([1280, 1280], "F32")],
      [`${layer}.v_proj.weight`, tensor([1280, 1280])],
    ]);
    expect(() => planLayoutConversion(tensors, conversion("sdxl-kohya"))).toThrow(/cannot join/);
  });
});
