import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import {
  checkLoraWeightsFit,
  loraBlockWeightOf,
  loraLayoutSlots,
  loraSlotOfKey,
  parseLoraBlockWeights,
} from "./lora-block-weights.js";

const LBW_17 = "1,0.5,0,1,0.8,1,1,0.25,1,1,-0.5,1,1,1,1,1,1.2";

function failure(run: () => unknown) {
  try {
    run();
  } catch (error) {
    if (!isGyozaError(error)) throw error;
    return { code: error.code, text: error.describe() };
  }
  throw new Error("accepted");
}

describe("LoRA Block Weight lists", () => {
  it("have the extension's 12, 17, 20 and 26 slots, BASE first", () => {
    expect(loraLayoutSlots(17)).toEqual([
      "BASE",
      "IN01",
      "IN02",
      "IN04",
      "IN05",
      "IN07",
      "IN08",
      "M00",
      "OUT03",
      "OUT04",
      "OUT05",
      "OUT06",
      "OUT07",
      "OUT08",
      "OUT09",
      "OUT10",
      "OUT11",
    ]);
    expect(loraLayoutSlots(12)).toEqual([
      "BASE",
      "IN04",
      "IN05",
      "IN07",
      "IN08",
      "M00",
      "OUT00",
      "OUT01",
      "OUT02",
      "OUT03",
      "OUT04",
      "OUT05",
    ]);
    expect(loraLayoutSlots(20)).toHaveLength(20);
    expect(loraLayoutSlots(26)).toHaveLength(26);
  });

  it("read 17 values onto their slots and give the slots they leave out 0, and keys outside every block 1", () => {
    const weights = parseLoraBlockWeights(LBW_17);
    expect(weights.layout).toBe(17);
    expect(loraBlockWeightOf(weights, "IN01")).toBe(0.5);
    expect(loraBlockWeightOf(weights, "OUT05")).toBe(-0.5);
    expect(loraBlockWeightOf(weights, "IN00")).toBe(0); // not named by the 17-value list (LBW's to26)
    expect(loraBlockWeightOf(weights, "OUT00")).toBe(0);
    expect(loraBlockWeightOf(weights, null)).toBe(1);
  });

  it("read a list of numbers and a preset name, in any case, as the same weights", () => {
    const preset = parseLoraBlockWeights("outall");
    expect(preset.text).toBe("OUTALL");
    expect(preset.values).toEqual(
      parseLoraBlockWeights([1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]).values,
    );
  });

  it("give every key 1 when no weights are given", () => {
    const weights = parseLoraBlockWeights(undefined);
    expect([loraBlockWeightOf(weights, "BASE"), loraBlockWeightOf(weights, "OUT00")]).toEqual([1, 1]);
  });

  it("refuse a 17-value list with a trailing comma, naming the field and the slot before it", () => {
    const { code, text } = failure(() =>
      parseLoraBlockWeights(`${LBW_17},`, { where: "--lora detail.safetensors" }),
    );
    expect(code).toBe("usage");
    expect(text).toBe(
      "--lora detail.safetensors: block weight 18 is empty (after OUT11)\nfix: remove the trailing comma",
    );
  });

  it("refuse a word among the values, naming the slot it would set", () => {
    const fields = LBW_17.split(",");
    fields[7] = "R";
    expect(failure(() => parseLoraBlockWeights(fields.join(","))).text).toContain(
      'block weight 8 "R" is not a number (it would set M00)',
    );
  });

  it.each([16, 18, 25, 2])("refuse %i values, naming the counts that exist", (count) => {
    expect(failure(() => parseLoraBlockWeights(new Array(count).fill("1").join(","))).text).toContain(
      `${count} block weights`,
    );
  });

  it("refuse one number (the ratio scales every block) and an unknown preset with a suggestion", () => {
    expect(failure(() => parseLoraBlockWeights("0.5")).text).toContain("not a block-weight list");
    expect(failure(() => parseLoraBlockWeights("OUTAL")).text).toContain('did you mean "OUTALL"?');
  });

  it("refuse SD 1.x lists for an SDXL model and SDXL lists for an SD 1.x model", () => {
    expect(failure(() => checkLoraWeightsFit(parseLoraBlockWeights(LBW_17), "sdxl")).text).toContain(
      "give 12 or 20 values",
    );
    const sdxl = parseLoraBlockWeights("1,1,1,1,1,1,1,1,1,1,1,1");
    expect(failure(() => checkLoraWeightsFit(sdxl, "sd1")).text).toContain("give 17 or 26 values");
    expect(() => checkLoraWeightsFit(sdxl, "sdxl")).not.toThrow();
    expect(() => checkLoraWeightsFit(parseLoraBlockWeights(LBW_17), "sd2")).not.toThrow();
  });

  it.each([
    ["cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight", "BASE"],
    ["conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight", "BASE"],
    ["model.diffusion_model.input_blocks.1.1.proj_in.weight", "IN01"],
    ["model.diffusion_model.input_blocks.10.0.in_layers.2.weight", "IN10"],
    ["model.diffusion_model.middle_block.1.proj_in.weight", "M00"],
    ["model.diffusion_model.output_blocks.11.1.transformer_blocks.0.attn2.to_out.0.weight", "OUT11"],
    ["model.diffusion_model.time_embed.0.weight", null],
    ["model.diffusion_model.out.2.weight", null],
  ])("put %s in slot %s", (key, slot) => {
    expect(loraSlotOfKey(key)).toBe(slot);
  });
});
