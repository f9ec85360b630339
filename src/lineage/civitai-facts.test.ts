import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SyntheticOptions } from "../synth/synthetic-model.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { FIXTURE_DIRS } from "../test-support/fixture-dirs.js";
import { formatCivitaiFacts, readCivitaiFacts } from "./civitai-facts.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-civitai-facts-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fixture = (name: string) => FIXTURE_DIRS.ckpt + name;
const micro: SyntheticOptions = { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: 1 };

describe("civitaiFacts", () => {
  it.each([
    [
      "a pruned fp16 SD 1.5 safetensors",
      micro,
      "safetensors",
      { format: "SafeTensor", size: "pruned", fp: "fp16", type: "Model" },
    ],
    [
      "an fp32 checkpoint with EMA weights",
      { ...micro, dtype: "F32", ema: true },
      "safetensors",
      { format: "SafeTensor", size: "full", fp: "fp32", type: "Model" },
    ],
    [
      "a bf16 SDXL checkpoint",
      { ...micro, layout: "sdxl-sgm", dtype: "BF16" },
      "safetensors",
      { format: "SafeTensor", size: "pruned", fp: "bf16", type: "Model" },
    ],
    ["a pickled .ckpt", micro, "ckpt", { format: "PickleTensor", size: "pruned", fp: "fp16", type: "Model" }],
    [
      "a standalone VAE",
      { ...micro, vaeOnly: true },
      "safetensors",
      { format: "SafeTensor", size: "pruned", fp: "fp16", type: "VAE" },
    ],
  ] as const)("describes %s as Civitai would", async (_, options, format, expected) => {
    const path = join(dir, `${JSON.stringify(options).replace(/\W+/g, "-")}.${format}`);
    await writeSyntheticCheckpoint(path, options as SyntheticOptions, format);
    expect(await readCivitaiFacts(path)).toEqual(expected);
  });

  it.each([
    ["ti_embedding_auroraneg.pt", { format: "PickleTensor", type: "TextualInversion" }],
    ["vae_kl_f8_tiny.ckpt", { format: "PickleTensor", type: "VAE" }],
    // a Lightning training file: its EMA weights make it "full" (its type follows architecture detection)
    ["sd15_tiny_lightning.ckpt", { format: "PickleTensor", size: "full" }],
    ["lora_many_tensors.pt", { format: "PickleTensor", type: "LORA" }],
  ] as const)("describes the torch fixture %s", async (name, expected) => {
    expect(await readCivitaiFacts(fixture(name))).toMatchObject(expected);
  });

  it("prints one line for people", () => {
    expect(formatCivitaiFacts({ format: "SafeTensor", size: "pruned", fp: "fp16", type: "Model" })).toBe(
      "SafeTensor · pruned · fp16 · Model",
    );
    expect(formatCivitaiFacts({ format: "PickleTensor", size: "full", fp: null, type: null })).toBe(
      "PickleTensor · full · fp unknown · type unknown",
    );
  });
});
