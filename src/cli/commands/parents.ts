import { readdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Command } from "commander";
import {
  type NearestPreset,
  rankParents,
  type SkippedCandidate,
  withCheckpoints,
} from "../../analysis/index.js";
import { GyozaError } from "../../errors.js";
import { ioError } from "../../io/byte-source.js";
import { loadKernel } from "../../kernels/index.js";
import type { KernelName } from "../../kernels/merge-kernel.js";
import type { BlockRule } from "../../merge/slots.js";
import { searchOption } from "../flags.js";
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
    .addOption(searchOption("a folder to search (recursively) for candidate parents").makeOptionMandatory())
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
        solvedSlots: pair.recovery?.solvedSlots ?? pair.sampledSolvedSlots,
        slots: ranking.slotCount,
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
      for (const [i, pair] of pairs.entries())
        lines.push(`${i + 1}. ${pair.a} + ${pair.b}: ${describeFit(pair)}`);
      lines.push("candidates:");
      for (const candidate of ranking.candidates.slice(0, top)) {
        const best =
          candidate.bestResidual === null
            ? "no pair with a solved slot"
            : `best pair residual ${candidate.bestResidual.toExponential(2)}`;
        lines.push(`  ${candidate.path}: ${best}${candidate.copy ? " (a copy of the merged model)" : ""}`);
      }
      lines.push(...describeSkipped(ranking.skipped));
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}

/** One pair's result, saying only what was solved: a fit without a solved slot explains nothing. */
function describeFit(pair: {
  sampledResidual: number;
  solvedSlots: number;
  slots: number;
  residual?: number;
  explained?: boolean;
  nearestPreset?: NearestPreset | null;
}): string {
  const sampled = `sampled residual ${pair.sampledResidual.toExponential(2)}`;
  if (pair.solvedSlots === 0)
    return `${sampled}, no slot solved: the two never differ where they could be compared, so they explain nothing`;
  const solved = `${pair.solvedSlots} of ${pair.slots} slots solved`;
  if (pair.residual === undefined) return `${sampled} (${solved} in the samples)`;
  const verdict = pair.explained ? "explained" : "not explained";
  const preset = pair.nearestPreset
    ? `, nearest preset ${pair.nearestPreset.name}${pair.nearestPreset.swapped ? " (A/B exchanged)" : ""}`
    : "";
  return `${sampled}, exact ${pair.residual.toExponential(2)} ${verdict} (${solved})${preset}`;
}

const SKIP_CAUSES: Record<SkippedCandidate["cause"], string> = {
  shapes: "tensor shapes differ from the target",
  architecture: "another architecture than the target",
  unreadable: "could not be read",
};

/** "skipped 1 file: tensor shapes differ from the target (tiny.safetensors)", one line per cause, then each file's details. */
function describeSkipped(skipped: readonly SkippedCandidate[]): string[] {
  const lines: string[] = [];
  for (const [cause, text] of Object.entries(SKIP_CAUSES)) {
    const files = skipped.filter((skip) => skip.cause === cause);
    if (files.length === 0) continue;
    const names = files.map((skip) => basename(skip.path)).join(", ");
    lines.push(`skipped ${files.length} file${files.length === 1 ? "" : "s"}: ${text} (${names})`);
    for (const skip of files) lines.push(`  ${skip.path}: ${skip.reason}`);
  }
  return lines;
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
