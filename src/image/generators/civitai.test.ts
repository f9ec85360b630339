import { describe, expect, it } from "vitest";
import { BufferByteSource } from "../../io/byte-source.js";
import { copyMetadata, readMetadataOf } from "../carry-metadata.js";
import { detectGeneration } from "../detect-generation.js";
import { textsByKey } from "../metadata-types.js";
import { readImageMetadata } from "../read-image-metadata.js";
import { buildCivitaiJpeg, CIVITAI_AIRS, CIVITAI_GRAPH } from "../test-support/civitai-image.js";
import { buildPng, buildWebp } from "../test-support/test-images.js";

async function generationOf(bytes: Uint8Array) {
  const metadata = await readImageMetadata(new BufferByteSource(bytes, "civitai.jpeg"));
  return { metadata, info: detectGeneration(textsByKey(metadata.texts)) };
}

const sd1 = (type: string, modelId: string, versionId: string) => ({
  ecosystem: "sd1",
  type,
  source: "civitai",
  modelId,
  versionId,
});

describe("Civitai's on-site generator (a ComfyUI graph with resource-stack nodes in the UserComment)", () => {
  it("reads prompt, settings, model and LoRAs by AIR, and the hires pass from a JPEG built as Civitai serves it", async () => {
    const { metadata, info } = await generationOf(buildCivitaiJpeg());
    expect(metadata.texts.map((t) => [t.key, t.origin])).toEqual([
      ["exif_user_comment", "EXIF ExifIFD UserComment (UNICODE, UTF-16BE)"],
    ]);
    expect(info).toMatchObject({
      generator: "civitai",
      prompt: "a bowl of gyoza, steam, wooden table",
      negativePrompt: "blurry, lowres",
      sampler: "DPM++ 2M Karras",
      scheduler: "karras",
      seed: 2433638737,
      steps: 25,
      cfgScale: 7,
      width: 512,
      height: 768,
      clipSkip: 2,
      model: { name: CIVITAI_AIRS.checkpoint, air: sd1("checkpoint", "4384", "128713") },
      loras: [
        { name: CIVITAI_AIRS.detailLora, weight: 0.45, air: sd1("lora", "64560", "69190") },
        { name: CIVITAI_AIRS.styleLora, weight: 0.8, air: sd1("lora", "150182", "167845") },
      ],
      embeddings: [{ name: CIVITAI_AIRS.negativeEmbedding, air: sd1("embedding", "99890", "106916") }],
      hires: {
        upscaler: CIVITAI_AIRS.upscaler,
        width: 768,
        height: 1152,
        upscale: 1.5,
        steps: 12,
        denoise: 0.4,
      },
      extra: {
        airs: Object.values(CIVITAI_AIRS),
        workflowId: "txt2img-hires",
        resources: expect.arrayContaining([{ modelVersionId: 128713, strength: 1 }]),
      },
    });
  });

  it("recognises the graph by its resource-stack nodes when extra and extraMetadata are missing", async () => {
    const { extra: _extra, extraMetadata: _extraMetadata, ...graphOnly } = CIVITAI_GRAPH;
    const { info } = await generationOf(buildCivitaiJpeg(graphOnly));
    expect(info).toMatchObject({
      generator: "civitai",
      prompt: "a bowl of gyoza, steam, wooden table\n",
      sampler: "dpmpp_2m",
      seed: 2433638737,
      width: 512,
      model: { name: CIVITAI_AIRS.checkpoint, air: sd1("checkpoint", "4384", "128713") },
    });
  });

  it("keeps a loader name that is not a well-formed AIR as a plain name", async () => {
    const graph = structuredClone(CIVITAI_GRAPH);
    graph["resource-stack"].inputs.ckpt_name = "urn:air:sd1:checkpoint:civitai:dreamshaper@8";
    const { info } = await generationOf(buildCivitaiJpeg(graph));
    expect(info?.model).toEqual({ name: "urn:air:sd1:checkpoint:civitai:dreamshaper@8" });
  });

  it.each([
    ["PNG", "resized.png", () => buildPng(8, 8)],
    ["WebP", "resized.webp", () => buildWebp(8, 8)],
  ])(
    "carries the graph onto a %s copy (as its ComfyUI prompt) with the same parsed metadata",
    async (_container, name, build) => {
      const source = { bytes: buildCivitaiJpeg(), name: "civitai.jpeg" };
      const result = await copyMetadata(source, { bytes: build(), name });
      const copied = detectGeneration(
        textsByKey((await readMetadataOf({ bytes: result.bytes, name })).texts),
      );
      const { raw: _raw, ...expected } = (await generationOf(source.bytes)).info!;
      expect(copied).toMatchObject({ ...expected, generator: "civitai" });
    },
  );
});
