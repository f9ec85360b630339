import type { Command } from "commander";
import { GyozaError } from "../../errors.js";
import { defaultHashCacheDir } from "../../hash/index.js";
import { loadKernel } from "../../kernels/index.js";
import type { KernelName } from "../../kernels/merge-kernel.js";
import { type ReplayResult, replayMerge } from "../../lineage/index.js";
import { hashCacheOption, mkdirOption, prepareOutputFolder, searchOption } from "../flags.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface ReplayFlags {
  search: string[];
  output?: string;
  json?: boolean;
  kernel?: string;
  hashCache: boolean;
  mkdir?: boolean;
}

export function registerReplay(program: Command): void {
  program
    .command("replay")
    .description(
      "rebuild a gyoza-made merge from the recipe in its metadata, finding each input by hash, and check the result is bit-identical (same AutoV3)",
    )
    .argument("<file>", "a .safetensors written by gyoza merge (metadata full or hashes)")
    .addOption(
      searchOption(
        "a folder searched recursively for the inputs (matched by sha256 or AutoV3)",
      ).makeOptionMandatory(),
    )
    .option(
      "-o, --output <file>",
      "keep the rebuilt file here (default: a temporary file, removed after the check)",
    )
    .option("--kernel <name>", "arithmetic kernel: native, wasm or js (default: fastest available)")
    .addOption(mkdirOption())
    .addOption(hashCacheOption())
    .option("--json", "print the result as JSON")
    .action(async (file: string, flags: ReplayFlags) => {
      if (flags.output) await prepareOutputFolder(flags.output, flags.mkdir);
      const kernel = await loadKernel((flags.kernel as KernelName | undefined) ?? "auto");
      const result = await replayMerge(file, {
        searchDirs: flags.search,
        ...(flags.output ? { output: flags.output } : {}),
        hashCacheDir: flags.hashCache ? defaultHashCacheDir() : false,
        kernel,
        onProgress: progressBar({ quiet: flags.json ?? false }),
      });
      if (flags.json) printJson(result);
      else process.stdout.write(formatReplay(result));
      if (!result.identical) {
        throw new GyozaError(
          "hash-mismatch",
          `the rebuilt merge differs: AutoV3 ${result.actualAutoV3.slice(0, 12)}, the file has ${result.expectedAutoV3.slice(0, 12)}`,
          {
            file,
            fix: "the inputs match by hash, so the merge itself changed (gyoza version, kernel or method)",
          },
        );
      }
    });
}

export function formatReplay(result: ReplayResult): string {
  const { candidates, hashed } = result.searched;
  const lines = [
    `${result.file}  (inputs found among ${candidates} model files, ${hashed} hashed or read from the cache)`,
  ];
  for (const input of result.inputs) {
    const recorded =
      input.recordedPath && input.recordedPath !== input.path ? ` (recorded as ${input.recordedPath})` : "";
    lines.push(`  ${input.name.padEnd(16)} ${input.path}  by ${input.matchedBy}${recorded}`);
  }
  if (result.recordedAutoV3 && result.recordedAutoV3 !== result.expectedAutoV3) {
    lines.push(
      `  note: modelspec.hash_sha256 (${result.recordedAutoV3.slice(0, 12)}) is not the file's AutoV3`,
    );
  }
  lines.push(
    result.identical
      ? `identical: AutoV3 ${result.actualAutoV3.slice(0, 12)} (${result.actualAutoV3})`
      : `DIFFERENT: rebuilt AutoV3 ${result.actualAutoV3.slice(0, 12)}, original ${result.expectedAutoV3.slice(0, 12)}`,
  );
  if (result.output) lines.push(`wrote ${result.output}`);
  return `${lines.join("\n")}\n`;
}
