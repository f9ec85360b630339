import { readFileSync } from "node:fs";
import { infoFromInfotext } from "../../image/index.js";
import { loadRecipe } from "../../recipe/index.js";
import type { ModelPageData, PageFile, PageVersion } from "../model-page-data.js";

export const GYOZAMIX_YAML = readFileSync(
  new URL("../../recipe/examples/gyozamix.yaml", import.meta.url),
  "utf8",
);

export const SAMPLE_INFOTEXT =
  "1girl, gyoza, masterpiece\nNegative prompt: lowres, AuroraNegative\n" +
  "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 123, Size: 512x768, Model hash: 0123456789, Model: gyozaMix_v2, Clip skip: 2";

function file(name: string, sha: string, overrides: Partial<PageFile> = {}): PageFile {
  return {
    name,
    type: "Model",
    sizeBytes: 2_132_000_000,
    fp: "fp16",
    size: "pruned",
    format: "SafeTensor",
    hashes: {
      SHA256: sha,
      AutoV1: "A1B2C3D4",
      AutoV2: sha.slice(0, 10),
      AutoV3: "ABCDEF012345",
      BLAKE3: "B".repeat(64),
      CRC32: "0D4A1185",
    },
    missing: false,
    ...overrides,
  };
}

/** A model with two versions (v2 newest), two files on v2, one image each, the GyozaMix recipe on v2. */
export function samplePageData(imagePaths: { v1: string; v2: string }): ModelPageData {
  const version = (name: string, overrides: Partial<PageVersion>): PageVersion => ({
    name,
    baseModel: "SD 1.5",
    createdAt: null,
    files: [],
    recipe: null,
    parents: [],
    images: [],
    usage: { clipSkip: 2, vae: "kl-f8-anime2.ckpt", negativeEmbeddings: [], trainedWords: [], notes: null },
    ...overrides,
  });
  return {
    model: { name: "GyozaMix", type: "Checkpoint", tags: ["anime", "merge"], description: null },
    versions: [
      version("v2", {
        createdAt: "2026-12-01T10:00:00Z",
        files: [
          file("gyozamix-v2-fp16.safetensors", "2".repeat(64)),
          file("gyozamix-v2-fp32.ckpt", "3".repeat(64), { fp: "fp32", size: "full", format: "PickleTensor" }),
        ],
        recipe: {
          recipe: loadRecipe(GYOZAMIX_YAML, { sourceName: "gyozamix.yaml" }),
          summary: null,
          family: "sd1",
        },
        parents: [{ name: "composition", hash: "ABCDEF0123" }],
        images: [
          {
            path: imagePaths.v2,
            generation: infoFromInfotext(SAMPLE_INFOTEXT, "a1111", { parameters: SAMPLE_INFOTEXT }),
          },
        ],
        usage: {
          clipSkip: 2,
          vae: "kl-f8-anime2.ckpt",
          negativeEmbeddings: ["AuroraNegative"],
          trainedWords: [],
          notes: "works best at 512x768",
        },
      }),
      version("v1", {
        createdAt: "2026-11-01T10:00:00Z",
        files: [file("gyozamix-v1-fp16.safetensors", "1".repeat(64))],
        images: [{ path: imagePaths.v1, generation: null }],
      }),
    ],
  };
}
