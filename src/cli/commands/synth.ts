import { type Command, Option } from "commander";
import { parsePrecision } from "../../io/dtype.js";
import type { OutputDtype } from "../../recipe/index.js";
import type { SyntheticLayout } from "../../synth/synthetic-model.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { choiceFlag, dtypeOption, integerFlag, mkdirOption, prepareOutputFolder } from "../flags.js";
import { formatBytes } from "../output.js";

const LAYOUTS: Record<string, SyntheticLayout> = {
  sd1: "sd1-ldm",
  sd15: "sd1-ldm",
  sd2: "sd2-ldm",
  sdxl: "sdxl-sgm",
};

interface SynthFlags {
  arch: keyof typeof LAYOUTS;
  size: "full" | "tiny" | "micro";
  dtype: OutputDtype;
  seed: number;
  mkdir?: boolean;
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
    .addOption(
      new Option("--arch <arch>", "sd1, sd2 or sdxl")
        .argParser(choiceFlag("--arch", Object.keys(LAYOUTS) as (keyof typeof LAYOUTS)[]))
        .default("sd1"),
    )
    .addOption(
      new Option("--size <size>", "full (real shapes), tiny (widths ÷ 16) or micro (÷ 64)")
        .argParser(choiceFlag("--size", ["full", "tiny", "micro"] as const))
        .default("full"),
    )
    .addOption(dtypeOption("precision", "fp16"))
    .addOption(
      new Option("--seed <n>", "different seeds give different models")
        .argParser(integerFlag("--seed"))
        .default(1),
    )
    .option("--ema", "include model_ema.* (an unpruned training checkpoint)")
    .option("--inpaint", "9-channel inpainting UNet")
    .option("--v-prediction", "SD 2.x 768-v")
    .option("--vae", "a standalone VAE file (encoder.*/decoder.* keys) instead of a model")
    .addOption(mkdirOption())
    .action(async (out: string, flags: SynthFlags) => {
      const layout = LAYOUTS[flags.arch]!;
      const dtype = parsePrecision(flags.dtype) as "F16" | "BF16" | "F32";
      await prepareOutputFolder(out, flags.mkdir);
      const format = /\.(ckpt|pt|pth|bin)$/i.test(out) ? "ckpt" : "safetensors";
      const bytes = await writeSyntheticCheckpoint(
        out,
        {
          layout,
          size: flags.size,
          dtype,
          seed: flags.seed,
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
