import type { Command } from "commander";
import { createBackend, loadGyozaConfig, pickBackend } from "../backends/index.js";
import type { GenerationBackend, GenerationParams } from "../backends/types.js";
import { parseSize } from "../preview/run-sample.js";
import { integerFlag, numberFlag } from "./flags.js";

/** The generation and backend flags `gyoza sample` and `gyoza grid` share. */
export interface GenerationFlags {
  steps: number;
  cfg: number;
  sampler: string;
  scheduler: string;
  clipSkip: number;
  vae?: string;
  size: string;
  backend?: string;
  config?: string;
}

/** Adds --steps … --config (everything but prompt, negative and seed, which each command words its own way). */
export function addGenerationOptions(command: Command): Command {
  return command
    .option("--steps <n>", "sampling steps", integerFlag("--steps", 1, 1000), 20)
    .option("--cfg <x>", "CFG scale", numberFlag("--cfg"), 7)
    .option("--sampler <name>", "sampler, in A1111's names (Euler a, DPM++ 2M, …)", "Euler a")
    .option("--scheduler <name>", "schedule type (Automatic, Karras, Exponential, …)", "Automatic")
    .option(
      "--clip-skip <n>",
      "clip skip (1 = last layer, 2 for most anime models)",
      integerFlag("--clip-skip", 1, 12),
      1,
    )
    .option("--vae <name>", "a VAE the backend lists (default: the checkpoint's own)")
    .option("--size <WxH>", "image size", "512x512")
    .option("--backend <name>", "which backend of gyoza.yaml (default: default_backend, or the only one)")
    .option(
      "--config <file>",
      "the gyoza.yaml to read (default: $GYOZA_CONFIG, ./gyoza.yaml, ~/.config/gyoza/gyoza.yaml)",
    );
}

/** The flags' generation settings, everything but prompt, negative prompt and seed. */
export function generationSettings(
  flags: GenerationFlags,
): Omit<GenerationParams, "prompt" | "negativePrompt" | "seed"> {
  return {
    steps: flags.steps,
    cfg: flags.cfg,
    sampler: flags.sampler,
    scheduler: flags.scheduler,
    clipSkip: flags.clipSkip,
    ...parseSize(flags.size),
    ...(flags.vae ? { vae: flags.vae } : {}),
  };
}

/** The backend --backend names in the gyoza.yaml --config (or the usual lookup) points to. */
export async function backendFromFlags(flags: GenerationFlags): Promise<GenerationBackend> {
  const config = await loadGyozaConfig(flags.config ? { path: flags.config } : {});
  return createBackend(pickBackend(config, flags.backend));
}
