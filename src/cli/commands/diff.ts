import { writeFile } from "node:fs/promises";
import { basename } from "node:path";
import type { Command } from "commander";
import {
  type DiffStats,
  diffModels,
  diffPlotPng,
  diffPlotSvg,
  withCheckpoints,
} from "../../analysis/index.js";
import { GyozaError } from "../../errors.js";
import { ioError } from "../../io/byte-source.js";
import { loadKernel } from "../../kernels/index.js";
import type { KernelName } from "../../kernels/merge-kernel.js";
import type { BlockRule } from "../../merge/slots.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface DiffFlags {
  json?: boolean;
  keys?: boolean;
  plot?: string;
  blockRule?: BlockRule;
  kernel?: string;
}

export function registerDiff(program: Command): void {
  program
    .command("diff")
    .description(
      "compare two models per block and component: cosine similarity, relative L2 distance, identical tensors",
    )
    .argument("<a>", "first model (.safetensors or .ckpt)")
    .argument("<b>", "second model (any dtype or format)")
    .option("--json", "print the comparison as JSON")
    .option("--keys", "also compare every key")
    .option("--plot <file>", "draw the blocks as a bar/heat plot: FILE.svg or FILE.png")
    .option("--block-rule <rule>", "key → block rule: classic (default) or sd-mecha")
    .option("--kernel <name>", "decoding kernel: native, wasm or js (default: fastest available)")
    .action(async (a: string, b: string, flags: DiffFlags) => {
      if (flags.plot && !/\.(svg|png)$/i.test(flags.plot))
        throw new GyozaError("usage", `--plot writes .svg or .png, not ${flags.plot}`);
      const kernel = await loadKernel((flags.kernel as KernelName | undefined) ?? "auto");
      const diff = await withCheckpoints([a, b], ([x, y]) =>
        diffModels(x!, y!, {
          kernel,
          perKey: flags.keys ?? false,
          ...(flags.blockRule ? { rule: flags.blockRule } : {}),
          onProgress: progressBar({ quiet: flags.json ?? false }),
        }),
      );
      if (flags.plot) {
        const svg = diffPlotSvg(diff, `${basename(a)} vs ${basename(b)}`);
        const bytes = /\.png$/i.test(flags.plot) ? await diffPlotPng(svg) : svg;
        await writeFile(flags.plot, bytes).catch((cause) => {
          throw ioError(flags.plot!, cause);
        });
      }
      if (flags.json) {
        printJson(diff);
        return;
      }
      const lines = [`${diff.architecture}: ${basename(a)} vs ${basename(b)}`, header()];
      for (const stats of [...diff.blocks, ...diff.components, diff.total])
        if (stats.keys > 0) lines.push(line(stats));
      for (const stats of diff.keys ?? []) lines.push(line(stats));
      if (diff.missing.length)
        lines.push(
          `${diff.missing.length} keys of ${basename(a)} missing from ${basename(b)} (e.g. ${diff.missing[0]!.key})`,
        );
      if (diff.extra.length)
        lines.push(`${diff.extra.length} keys only in ${basename(b)} (e.g. ${diff.extra[0]!.key})`);
      if (diff.skipped.length)
        lines.push(
          `${diff.skipped.length} keys not compared (not float tensors, or sizes differ; e.g. ${diff.skipped[0]})`,
        );
      if (flags.plot) lines.push(`plot: ${flags.plot}`);
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}

function header(): string {
  return `${"".padEnd(14)} ${"cosine".padStart(10)} ${"rel. L2".padStart(9)} ${"identical".padStart(9)}`;
}

function line(stats: DiffStats): string {
  const name = stats.name.length > 14 ? stats.name : stats.name.padEnd(14);
  return `${name} ${stats.cosine.toFixed(6).padStart(10)} ${stats.relativeL2.toFixed(5).padStart(9)} ${`${(100 * stats.identical).toFixed(0)}%`.padStart(9)}`;
}
