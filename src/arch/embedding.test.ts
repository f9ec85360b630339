import { describe, expect, it } from "vitest";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { Checkpoint } from "../io/tensor.js";
import { FIXTURE_DIRS } from "../test-support/fixture-dirs.js";
import { embeddingForSafetensors, inspectEmbedding, tokenOf } from "./embedding.js";
import { openTensors } from "./lora/test-support/build-lora.js";

const AURORANEG = `${FIXTURE_DIRS.ckpt}ti_embedding_auroraneg.pt`;

async function withCheckpoint<T>(
  opening: Promise<Checkpoint>,
  use: (checkpoint: Checkpoint) => T,
): Promise<T> {
  const checkpoint = await opening;
  try {
    return use(checkpoint);
  } finally {
    await checkpoint.close();
  }
}

describe("inspectEmbedding", () => {
  it("reads an A1111 .pt embedding: token from the file name, vectors, CLIP-L, the training record", async () => {
    const report = await withCheckpoint(openCheckpoint(AURORANEG), inspectEmbedding);
    expect(report).toEqual({
      token: "ti_embedding_auroraneg",
      layout: "a1111-pt",
      vectors: 2,
      base: "sd1",
      encoders: [{ encoder: "clip_l", key: "string_to_param.*", vectors: 2, width: 768 }],
      training: { name: "auroraneg", step: 500, sdCheckpoint: "abcd1234", sdCheckpointName: "x" },
      issues: [],
    });
  });

  it("keeps the .pt's scalar leaves (name, step, …) readable, without executing anything", async () => {
    const scalars = await withCheckpoint(openCheckpoint(AURORANEG), (c) =>
      Object.fromEntries(c.scalars ?? []),
    );
    expect(scalars).toEqual({
      "string_to_token.*": 265,
      name: "auroraneg",
      step: 500,
      sd_checkpoint: "abcd1234",
      sd_checkpoint_name: "x",
    });
  });

  it.each([
    [
      "emb_params [8, 1024]",
      [{ key: "emb_params", shape: [8, 1024] }],
      "emb_params",
      "sd2",
      ["openclip_h"],
      8,
    ],
    ["emb_params [1, 768]", [{ key: "emb_params", shape: [1, 768] }], "emb_params", "sd1", ["clip_l"], 1],
    ["a single 1-D vector", [{ key: "emb_params", shape: [768] }], "emb_params", "sd1", ["clip_l"], 1],
    [
      "SDXL clip_l + clip_g",
      [
        { key: "clip_g", shape: [4, 1280] },
        { key: "clip_l", shape: [4, 768] },
      ],
      "sdxl",
      "sdxl",
      ["clip_l", "clip_g"],
      4,
    ],
  ])("tells the text encoders of %s", async (_, tensors, layout, base, encoders, vectors) => {
    const report = await withCheckpoint(
      openTensors(tensors, undefined, "models/KHFB.safetensors"),
      inspectEmbedding,
    );
    expect(report).toMatchObject({ token: "KHFB", layout, base, vectors, issues: [] });
    expect(report!.encoders.map((e) => e.encoder)).toEqual(encoders);
  });

  it("says when SDXL's two encoders hold different vector counts, or a width fits no encoder", async () => {
    const uneven = await withCheckpoint(
      openTensors([
        { key: "clip_l", shape: [4, 768] },
        { key: "clip_g", shape: [2, 1280] },
      ]),
      inspectEmbedding,
    );
    expect(uneven!.issues).toEqual(["the encoders hold different vector counts (clip_l 4, clip_g 2)"]);
    const odd = await withCheckpoint(openTensors([{ key: "emb_params", shape: [2, 512] }]), inspectEmbedding);
    expect(odd).toMatchObject({
      base: "unknown",
      issues: ["emb_params: vectors of width 512 fit no known text encoder"],
    });
  });

  it("is undefined for files that are no embedding", async () => {
    const report = await withCheckpoint(
      openTensors([{ key: "lora_unet_x.lora_up.weight", shape: [4, 2] }]),
      inspectEmbedding,
    );
    expect(report).toBeUndefined();
  });

  it.each([
    ["embeddings/AuroraNegative.pt", "AuroraNegative"],
    ["/x/bad-hands-5.safetensors", "bad-hands-5"],
    ["easynegative.v2.safetensors", "easynegative.v2"],
  ])("takes the prompt token of %s from the file name: %s", (path, token) => {
    expect(tokenOf(path)).toBe(token);
  });
});

describe("embeddingForSafetensors", () => {
  it("renames an A1111 .pt's string_to_param.* to emb_params and keeps its training record as metadata", async () => {
    const converted = await withCheckpoint(openCheckpoint(AURORANEG), embeddingForSafetensors);
    expect([...converted!.tensors.keys()]).toEqual(["emb_params"]);
    expect(converted!.tensors.get("emb_params")).toMatchObject({
      key: "emb_params",
      dtype: "F32",
      shape: [2, 768],
    });
    expect(converted!.metadata).toEqual({
      name: "auroraneg",
      step: "500",
      sd_checkpoint: "abcd1234",
      sd_checkpoint_name: "x",
    });
  });

  it("leaves safetensors embeddings alone (they are in their layout already)", async () => {
    const converted = await withCheckpoint(
      openTensors([{ key: "emb_params", shape: [2, 768] }]),
      embeddingForSafetensors,
    );
    expect(converted).toBeUndefined();
  });
});
