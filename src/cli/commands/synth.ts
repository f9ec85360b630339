import type { Command } from "commander";
import { GyozaError } from "../../errors.js";
import { parsePrecision } from "../../io/dtype.js";
import type { SyntheticLayout } from "../../synth/synthetic-model.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { formatBytes } from "../output.js";

const LAYOUTS: Record<string, SyntheticLayout> = {
  sd1: "sd1-ldm",
  sd15: "sd1-ldm",
  sd2: "sd2-ldm",
  sdxl: "sdxl-sgm",
};

interface SynthFlags {
  arch: string;
  size: "full" | "tiny" | "micro";
  dtype: string;
  seed: string;
  ema?: boolean;
  inpaint?: boolean;
  vPrediction?: boolean;
  vae?: boolean;
}

export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description(
      "write a synthetic checkpoint: real key names and shapes, random values (for benchmarks, tests, demos)",
    )
    .argument("<out>", "*.safetensors or *.ckpt")
    .option("--arch <arch>", "sd1, sd2 or sdxl", "sd1")
    .option("--size <size>", "full (real shapes), tiny (widths ÷ 16) or micro (÷ 64)", "full")
    .option("--dtype <dtype>", "fp16, bf16 or fp32", "fp16")
    .option("--seed <n>", "different seeds give different models", "1")
    .option("--ema", "include model_ema.* (an unpruned training checkpoint)")
    .option("--inpaint", "9-channel inpainting UNet")
    .option("--v-prediction", "SD 2.x 768-v")
    .option("--vae", "a standalone VAE file (encoder.*/decoder.* keys) instead of a model")
    .action(async (out: string, flags: SynthFlags) => {
      const layout = LAYOUTS[flags.arch];
      if (!layout)
        throw new GyozaError("unknown-id", `unknown architecture "${flags.arch}"`, {
          fix: "use sd1, sd2 or sdxl",
        });
      const dtype = parsePrecision(flags.dtype);
      if (dtype !== "F16" && dtype !== "BF16" && dtype !== "F32")
        throw new GyozaError("usage", "synthetic models are fp16, bf16 or fp32");
      const format = /\.(ckpt|pt|pth|bin)$/i.test(out) ? "ckpt" : "safetensors";
      const bytes = await writeSyntheticCheckpoint(
        out,
        {
          layout,
          size: flags.size,
          dtype,
          seed: Number(flags.seed),
          ...(flags.ema ? { ema: true } : {}),
          ...(flags.inpaint ? { inpaint: true } : {}),
          ...(flags.vPrediction ? { vPrediction: true } : {}),
          ...(flags.vae ? { vaeOnly: true } : {}),
        },
        format,
      );
      process.stdout.write(
        `wrote ${out}: ${formatBytes(bytes)} (${flags.size} synthetic ${flags.arch}, ${flags.dtype}, ${format})\n`,
      );
    });
}
