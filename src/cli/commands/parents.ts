import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { rankParents, withCheckpoints } from "../../analysis/index.js";
import { GyozaError } from "../../errors.js";
import { ioError } from "../../io/byte-source.js";
import { loadKernel } from "../../kernels/index.js";
import type { KernelName } from "../../kernels/merge-kernel.js";
import type { BlockRule } from "../../merge/slots.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface ParentsFlags {
  search: string[];
  top: string;
  samples?: string;
  exact?: string;
  json?: boolean;
  blockRule?: BlockRule;
  kernel?: string;
}

const CHECKPOINT_FILE = /\.(safetensors|ckpt|pt|pth|bin)$/i;

export function registerParents(program: Command): void {
  program
    .command("parents")
    .description(
      "rank the models in folders by how well a weighted sum of two of them explains a merged model",
    )
    .argument("<merged>", "the merged model")
    .requiredOption("--search <dirs...>", "folders to search (recursively) for candidate parents")
    .option("--top <n>", "pairs and candidates to show", "5")
    .option("--samples <n>", "elements sampled per model (default 1048576)")
    .option("--exact <n>", "best pairs to check exactly, every element (default 3)")
    .option("--json", "print the ranking as JSON")
    .option("--block-rule <rule>", "key → block rule: classic (default) or sd-mecha")
    .option("--kernel <name>", "decoding kernel: native, wasm or js (default: fastest available)")
    .action(async (merged: string, flags: ParentsFlags) => {
      const top = positiveInteger(flags.top, "--top");
      const files = (await Promise.all(flags.search.map(checkpointFiles))).flat();
      const mergedPath = resolve(merged);
      const candidates = [...new Set(files)].filter((file) => file !== mergedPath);
      if (candidates.length < 2)
        throw new GyozaError(
          "usage",
          `found ${candidates.length} candidate file(s) in ${flags.search.join(", ")}: need two`,
        );
      const kernel = await loadKernel((flags.kernel as KernelName | undefined) ?? "auto");
      const ranking = await withCheckpoints([merged, ...candidates], ([model, ...others]) =>
        rankParents(model!, others, {
          kernel,
          ...(flags.blockRule ? { rule: flags.blockRule } : {}),
          ...(flags.samples ? { sampleElements: positiveInteger(flags.samples, "--samples") } : {}),
          ...(flags.exact ? { exactPairs: positiveInteger(flags.exact, "--exact") } : {}),
          onProgress: progressBar({ quiet: flags.json ?? false }),
        }),
      );
      const pairs = ranking.pairs.slice(0, top).map((pair) => ({
        a: pair.a,
        b: pair.b,
        sampledResidual: pair.sampledResidual,
        ...(pair.recovery
          ? {
              residual: pair.recovery.residual,
              explained: pair.recovery.explained,
              alpha: pair.recovery.alpha,
              nearestPreset: pair.recovery.nearestPreset,
            }
          : {}),
      }));
      if (flags.json) {
        printJson({
          pairs,
          candidates: ranking.candidates.slice(0, top),
          skipped: ranking.skipped,
          sampledElements: ranking.sampledElements,
        });
        return;
      }
      const lines = [
        `best parent pairs for ${merged} (${ranking.sampledElements} sampled elements per model):`,
      ];
      pairs.forEach((pair, i) => {
        const exact =
          pair.residual === undefined
            ? ""
            : `, exact ${pair.residual.toExponential(2)}${pair.explained ? " explained" : " not explained"}`;
        const preset = pair.nearestPreset
          ? `, nearest preset ${pair.nearestPreset.name}${pair.nearestPreset.swapped ? " (A/B exchanged)" : ""}`
          : "";
        lines.push(
          `${i + 1}. ${pair.a} + ${pair.b}: sampled residual ${pair.sampledResidual.toExponential(2)}${exact}${preset}`,
        );
      });
      lines.push("candidates:");
      for (const candidate of ranking.candidates.slice(0, top))
        lines.push(
          `  ${candidate.path}: best pair residual ${candidate.bestResidual.toExponential(2)}${candidate.copy ? " (a copy of the merged model)" : ""}`,
        );
      for (const skip of ranking.skipped) lines.push(`skipped ${skip.path}: ${skip.reason}`);
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}

function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new GyozaError("usage", `${flag} takes a positive whole number, not ${text}`);
  return value;
}

async function checkpointFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch((cause) => {
    throw ioError(dir, cause);
  });
  const files: string[] = [];
  for (const entry of entries) {
    const path = resolve(join(dir, entry));
    if (CHECKPOINT_FILE.test(entry) && (await stat(path)).isFile()) files.push(path);
  }
  return files.sort();
}
