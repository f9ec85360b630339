import { describe, expect, it } from "vitest";
import { BufferByteSource } from "../../io/byte-source.js";
import { detectGeneration } from "../detect-generation.js";
import { textsByKey } from "../metadata-types.js";
import { makePngTextChunk } from "../png-writer.js";
import { readImageMetadata } from "../read-image-metadata.js";
import { buildPng } from "../test-support/test-images.js";

/** The seed the graph's sampler ran with (Tensor.Art draws it when the user asks for a random one). */
const RAN_SEED = 1815283457;

/** A Tensor.Art ComfyUI graph: its own ECHO checkpoint loader, a KSampler that holds the real seed. */
const graph = {
  "10002": { class_type: "ECHOCheckpointLoaderSimple", inputs: { ckpt_name: "EMS-1045417-EMS.safetensors" } },
  "10023": { class_type: "CLIPSetLastLayer", inputs: { clip: ["10002", 1], stop_at_clip_layer: -2 } },
  "6": { class_type: "CLIPTextEncode", inputs: { text: "a plate of gyoza", clip: ["10023", 0] } },
  "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["10023", 0] } },
  "5": { class_type: "EmptyLatentImage", inputs: { width: 512, height: 768, batch_size: 1 } },
  "3": {
    class_type: "KSampler",
    inputs: {
      seed: RAN_SEED,
      steps: 25,
      cfg: 7,
      sampler_name: "euler_ancestral",
      scheduler: "normal",
      denoise: 1,
      model: ["10002", 0],
      positive: ["6", 0],
      negative: ["7", 0],
      latent_image: ["5", 0],
    },
  },
};

/** The A1111-style summary Tensor.Art writes beside the graph: `Seed: -1` when the user asked for a random seed. */
const summary =
  "a plate of gyoza\nNegative prompt: blurry\nSteps: 25, Sampler: Euler a, CFG scale: 7, Seed: -1, Size: 512x768, Clip skip: 2, Model: EMS-1045417-EMS";

async function generationOf(chunks: Record<string, string>) {
  const png = buildPng(
    4,
    4,
    0x80,
    Object.entries(chunks).map(([key, text]) => makePngTextChunk(key, text)),
  );
  const metadata = await readImageMetadata(new BufferByteSource(png, "tensorart.png"));
  return detectGeneration(textsByKey(metadata.texts));
}

describe("a summary that says Seed: -1 (random) beside the ComfyUI graph that ran", () => {
  it("takes the seed a Tensor.Art PNG's graph used, not the -1 of its parameters and generation_data", async () => {
    const generationData = JSON.stringify({
      prompt: "a plate of gyoza",
      negativePrompt: "blurry",
      seed: "-1",
      steps: 25,
      cfgScale: 7,
      baseModel: { modelFileName: "EMS-1045417-EMS", hash: "1a2b3c4d5e" },
    });
    const info = await generationOf({
      parameters: summary,
      prompt: JSON.stringify(graph),
      generation_data: generationData,
    });
    expect(info).toMatchObject({
      generator: "tensorart",
      seed: RAN_SEED,
      prompt: "a plate of gyoza",
      sampler: "euler_ancestral",
      model: { name: "EMS-1045417-EMS", hash: "1a2b3c4d5e" },
    });
    expect(info?.notes).toEqual([
      `seed: generation_data says -1 (random); ${RAN_SEED} is the seed the ComfyUI graph's KSampler (node 3) used`,
    ]);
  });

  it("takes the graph's seed over a parameters chunk's -1 and says where it came from", async () => {
    const info = await generationOf({ parameters: summary, prompt: JSON.stringify(graph) });
    expect(info).toMatchObject({ seed: RAN_SEED, clipSkip: 2, width: 512 });
    expect(info?.notes).toEqual([
      `seed: parameters says -1 (random); ${RAN_SEED} is the seed the ComfyUI graph's KSampler (node 3) used`,
    ]);
  });

  it("keeps -1 when the graph records no seed either", async () => {
    const { "3": _sampler, ...noSampler } = graph;
    const info = await generationOf({ parameters: summary, prompt: JSON.stringify(noSampler) });
    expect(info?.seed).toBe(-1);
    expect(info?.notes).toBeUndefined();
  });

  it("adds no note when summary and graph agree", async () => {
    const info = await generationOf({
      parameters: summary.replace("Seed: -1", `Seed: ${RAN_SEED}`),
      prompt: JSON.stringify(graph),
    });
    expect(info?.seed).toBe(RAN_SEED);
    expect(info?.notes).toBeUndefined();
  });
});
