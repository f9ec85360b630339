import { copyFile, mkdir, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildLoraFile, SD1_KOHYA_MODULES } from "../../arch/lora/test-support/build-lora.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { buildSafetensorsBytes } from "../../test-support/build-safetensors.js";

/** The files `writeModelFolder` writes, by role. */
export const MODEL_FOLDER_FILES = {
  checkpoint: "gyozamix-v1.safetensors",
  sdxlCkpt: "sdxl-base.ckpt",
  vae: "kl-f8-anime.safetensors",
  lora: "gyoza-style.safetensors",
  truncated: "truncated.safetensors",
  hostile: "hostile.safetensors",
} as const;

/**
 * A small model folder as a mixer has one: an SD 1.x checkpoint (fp16) with a Civitai Helper
 * sidecar and a preview, an SDXL pickle checkpoint with a Stability Matrix sidecar, a standalone
 * VAE with A1111's user metadata, a LoRA with a broken Civitai Helper sidecar and a
 * ComfyUI-Lora-Manager one, a truncated download, a file whose header lies, and a
 * text file that is no model.
 */
export async function writeModelFolder(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = (name: string): string => join(dir, name);
  const files = MODEL_FOLDER_FILES;
  await writeSyntheticCheckpoint(path(files.checkpoint), {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F16",
    seed: 1,
  });
  await writeSyntheticCheckpoint(
    path(files.sdxlCkpt),
    { layout: "sdxl-sgm", size: "micro", dtype: "F32", seed: 2, ema: true },
    "ckpt",
  );
  await writeSyntheticCheckpoint(path(files.vae), {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F32",
    seed: 3,
    vaeOnly: true,
  });
  await writeFile(path(files.lora), buildLoraFile(SD1_KOHYA_MODULES));
  await copyFile(path(files.checkpoint), path(files.truncated));
  await truncate(path(files.truncated), 4096);
  await writeFile(
    path(files.hostile),
    buildSafetensorsBytes({}, new Uint8Array(16), { declaredLength: 1n << 60n }),
  );
  await writeFile(path("notes.txt"), "not a model\n");

  await writeFile(
    path("gyozamix-v1.civitai.info"),
    JSON.stringify({
      id: 1234,
      modelId: 56,
      name: "v1.0",
      baseModel: "SD 1.5",
      trainedWords: ["gyoza style"],
      description: "<p>first version</p>",
      model: { name: "GyozaMix", type: "Checkpoint", tags: ["anime", { name: "Merge" }] },
      files: [{ name: files.checkpoint, hashes: { SHA256: "00" } }],
    }),
  );
  await writeFile(path("gyozamix-v1.preview.png"), new Uint8Array([0x89, 0x50, 0x4e, 0x47]));
  await writeFile(
    path("sdxl-base.cm-info.json"),
    JSON.stringify({
      ModelId: 101,
      ModelName: "SDXL Base",
      VersionId: 202,
      VersionName: "1.0",
      BaseModel: "SDXL 1.0",
      Tags: ["base model"],
      TrainedWords: [],
      ModelType: "Checkpoint",
    }),
  );
  await writeFile(
    path("kl-f8-anime.json"),
    JSON.stringify({
      description: "an anime VAE",
      "sd version": "SD1",
      "activation text": "",
      "preferred weight": 0,
      "negative text": "lowres",
    }),
  );
  await writeFile(path("gyoza-style.civitai.info"), "{ not json");
  await writeFile(
    path("gyoza-style.metadata.json"),
    JSON.stringify({
      file_name: "gyoza-style",
      model_name: "Gyoza Style",
      base_model: "SD 1.5",
      sha256: "00",
      tags: ["style"],
      modelDescription: "",
      notes: "use at 0.6",
      civitai: {
        id: 77,
        modelId: 66,
        name: "v2",
        baseModel: "SD 1.5",
        trainedWords: ["gyoza"],
        model: { name: "Gyoza Style", type: "LORA" },
      },
    }),
  );
}
