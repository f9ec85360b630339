import { describe, expect, it } from "vitest";
import { summarizeTraining, TOP_TAGS, tagSummary } from "./training-metadata.js";

/** What kohya's train_network.py writes (all strings), trimmed to the keys that matter here. */
const KOHYA_METADATA: Record<string, string> = {
  ss_output_name: "gyoza_style_v2",
  ss_network_module: "networks.lora",
  ss_network_dim: "32",
  ss_network_alpha: "16.0",
  ss_network_args: '{"conv_dim": "8", "conv_alpha": "1"}',
  ss_base_model_version: "sd_v1",
  ss_sd_model_name: "animefull-final-pruned.ckpt",
  ss_new_sd_model_hash: "89d59c3dde4c56c6d5c41da34cc55ce479d93b4007046980934b14db71bdb2a8",
  ss_sd_model_hash: "925997e9",
  ss_training_comment: "trigger word: gyozastyle",
  ss_epoch: "8",
  ss_num_epochs: "10",
  ss_steps: "2400",
  ss_num_train_images: "300",
  ss_resolution: "(512, 512)",
  ss_clip_skip: "2",
  ss_learning_rate: "0.0001",
  ss_unet_lr: "0.0001",
  ss_text_encoder_lr: "5e-05",
  ss_optimizer: "bitsandbytes.optim.adamw.AdamW8bit",
  ss_lr_scheduler: "cosine_with_restarts",
  ss_mixed_precision: "fp16",
  ss_seed: "42",
  ss_training_started_at: "1700000000.5",
  ss_training_finished_at: "1700003600",
  ss_noise_offset: "None",
  ss_max_grad_norm: "1.0",
  ss_tag_frequency: JSON.stringify({
    "10_gyoza": { "1girl": 120, solo: 90, " gyozastyle": 150 },
    "5_bg": { scenery: 40, "1girl": 10 },
  }),
  modelspec_note: "not ss_",
};

describe("summarizeTraining", () => {
  it("summarises kohya's ss_* record: network, base model, run, dates, tags, the keys left", () => {
    expect(summarizeTraining(KOHYA_METADATA)).toEqual({
      outputName: "gyoza_style_v2",
      networkModule: "networks.lora",
      networkDim: 32,
      networkAlpha: 16,
      networkArgs: { conv_dim: "8", conv_alpha: "1" },
      baseModelVersion: "sd_v1",
      sdModelName: "animefull-final-pruned.ckpt",
      sdModelHash: "89d59c3dde4c56c6d5c41da34cc55ce479d93b4007046980934b14db71bdb2a8",
      trainingComment: "trigger word: gyozastyle",
      epoch: 8,
      epochs: 10,
      steps: 2400,
      images: 300,
      resolution: "(512, 512)",
      clipSkip: 2,
      learningRate: 0.0001,
      unetLearningRate: 0.0001,
      textEncoderLearningRate: 0.00005,
      optimizer: "bitsandbytes.optim.adamw.AdamW8bit",
      scheduler: "cosine_with_restarts",
      mixedPrecision: "fp16",
      seed: 42,
      startedAt: "2023-11-14T22:13:20.500Z",
      finishedAt: "2023-11-14T23:13:20.000Z",
      tags: {
        folders: 2,
        distinct: 4,
        top: [
          { tag: "gyozastyle", count: 150 },
          { tag: "1girl", count: 130 },
          { tag: "solo", count: 90 },
          { tag: "scenery", count: 40 },
        ],
      },
      otherKeys: ["ss_max_grad_norm", "ss_noise_offset"],
    });
  });

  it("leaves out what the trainer left empty (None, blank) and what does not parse", () => {
    expect(
      summarizeTraining({
        ss_network_dim: "None",
        ss_seed: "",
        ss_steps: "many",
        ss_training_started_at: "0",
      }),
    ).toEqual({ otherKeys: [] });
  });

  it("takes the legacy model hash when there is no sha256 one", () => {
    expect(summarizeTraining({ ss_sd_model_hash: "925997e9" })?.sdModelHash).toBe("925997e9");
  });

  it("is undefined for a file without ss_* keys", () => {
    expect(summarizeTraining({ "modelspec.architecture": "stable-diffusion-v1/lora" })).toBeUndefined();
  });
});

describe("tagSummary", () => {
  it(`lists the ${TOP_TAGS} most frequent tags over all folders`, () => {
    const tags = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`tag${i}`, i]));
    const summary = tagSummary({ a: tags })!;
    expect(summary.top).toHaveLength(TOP_TAGS);
    expect(summary.top[0]).toEqual({ tag: "tag29", count: 29 });
    expect(summary).toMatchObject({ folders: 1, distinct: 30 });
  });

  it.each([
    ["a JSON string that is not an object", "[1, 2]"],
    ["text", "not json"],
    ["folders without tag counts", { a: "x" }],
    ["nothing", undefined],
  ])("gives no summary for %s", (_, value) => {
    expect(tagSummary(value)).toBeUndefined();
  });
});
