import { readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Command } from "commander";
import type { MergeResult } from "../../engine/execute-merge.js";
import { runRecipe } from "../../engine/run-recipe.js";
import { defaultHashCacheDir } from "../../hash/hash-cache.js";
import { ioError } from "../../io/byte-source.js";
import { loadKernel } from "../../kernels/index.js";
import type { KernelName } from "../../kernels/merge-kernel.js";
import { loadRecipe, type Recipe, recipeFromInlineArgs, saveRecipe } from "../../recipe/index.js";
import { formatBytes, printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface MergeFlags {
  output?: string;
  method: string;
  alpha?: string;
  beta?: string;
  base?: string;
  dtype?: "fp16" | "bf16" | "fp32";
  prune?: boolean;
  vae?: "keep-a" | "take-b" | "merge" | "bake";
  vaeFile?: string;
  vaeSlot?: string;
  metadata?: "full" | "hashes" | "none";
  arithmetic?: "fp32" | "lerp";
  blockRule?: "classic" | "sd-mecha";
  seed?: string;
  title?: string;
  saveRecipe?: string;
  kernel?: string;
  hashCache?: boolean;
  json?: boolean;
}

export function registerMerge(program: Command): void {
  program
    .command("merge")
    .description(
      "merge checkpoints: `gyoza merge RECIPE.yaml`, or the one-step form `gyoza merge A B --alpha COSINE -o OUT`",
    )
    .argument("<files...>", "a recipe (.yaml), or the models in the method's input order (a b [c])")
    .option("-o, --output <file>", "output file (inline form; a recipe names its own)")
    .option("--method <id>", "merge method (inline form)", "weighted_sum")
    .option("--alpha <weights>", "a number, 25/26 comma-separated values, a preset name (COSINE…)")
    .option("--beta <weights>", "second weight, for methods that take one")
    .option("--base <number>", "BASE weight (text encoder; VAE only with --vae merge)")
    .option("--dtype <dtype>", "fp16, bf16 or fp32")
    .option("--prune", "drop EMA and keys outside the architecture")
    .option("--vae <policy>", "keep-a (default), take-b, merge or bake")
    .option("--vae-file <file>", "the VAE to bake (with --vae bake)")
    .option("--vae-slot <slot>", "the slot whose weight the VAE takes (with --vae merge)")
    .option("--metadata <level>", "provenance written into the output: full, hashes or none")
    .option("--arithmetic <mode>", "fp32 (torch's weighted sum, default) or lerp (supermerger's torch.lerp)")
    .option("--block-rule <rule>", "key → block rule: classic (default) or sd-mecha")
    .option("--seed <n>", "seed for random methods (DARE)")
    .option("--title <title>", "modelspec.title of the output")
    .option("--save-recipe <file>", "also write the inline merge as a recipe file")
    .option("--no-hash-cache", "hash the inputs again instead of using the hash cache")
    .option("--kernel <name>", "arithmetic kernel: native, wasm or js (default: fastest available)")
    .option("--json", "print the result as JSON")
    .action(async (files: string[], flags: MergeFlags) => {
      let recipe: Recipe;
      let baseDir = process.cwd();
      if (files.length === 1 && /\.ya?ml$/i.test(files[0]!)) {
        const path = files[0]!;
        const text = await readFile(path, "utf8").catch((cause) => {
          throw ioError(path, cause);
        });
        recipe = loadRecipe(text, { sourceName: path });
        baseDir = dirname(path);
      } else {
        recipe = recipeFromInlineArgs({
          a: files[0]!,
          ...(files[1] ? { b: files[1] } : {}),
          ...(files[2] ? { c: files[2] } : {}),
          method: flags.method,
          ...(flags.alpha !== undefined ? { alpha: flags.alpha } : {}),
          ...(flags.beta !== undefined ? { beta: flags.beta } : {}),
          ...(flags.base !== undefined ? { base: Number(flags.base) } : {}),
          output: flags.output ?? "",
          ...(flags.dtype ? { dtype: flags.dtype } : {}),
          ...(flags.prune ? { prune: true } : {}),
          ...(flags.vae ? { vae: flags.vae } : {}),
          ...(flags.vaeFile ? { vaeFile: flags.vaeFile } : {}),
          ...(flags.vaeSlot ? { vaeSlot: flags.vaeSlot } : {}),
          ...(flags.metadata ? { metadata: flags.metadata } : {}),
          ...(flags.arithmetic ? { arithmetic: flags.arithmetic } : {}),
          ...(flags.blockRule ? { blockRule: flags.blockRule } : {}),
          ...(flags.seed !== undefined ? { seed: Number(flags.seed) } : {}),
          ...(flags.title ? { title: flags.title } : {}),
        });
        if (flags.saveRecipe) await writeFile(flags.saveRecipe, saveRecipe(recipe));
      }
      const kernel = await loadKernel((flags.kernel as KernelName | undefined) ?? "auto");
      const result = await runRecipe(recipe, {
        baseDir,
        kernel,
        onProgress: progressBar({ quiet: flags.json ?? false }),
        hashCacheDir: flags.hashCache === false ? false : defaultHashCacheDir(),
      });
      if (flags.json) {
        printJson({ ...result, kernel: kernel.name });
        return;
      }
      const lines = [
        `wrote ${result.output}: ${result.tensors} tensors (${result.merged} merged, ${result.copied} copied), ${formatBytes(result.bytes)}, ${result.architecture}, kernel ${kernel.name}`,
      ];
      if (result.dataSha256)
        lines.push(
          `AutoV3 ${result.dataSha256.slice(0, 12)}  (modelspec.hash_sha256 0x${result.dataSha256})`,
        );
      if (result.pruned) lines.push(`pruned ${result.pruned} tensors`);
      const time = timingsLine(result.timings);
      if (time) lines.push(time);
      if (result.onlyInLaterInputs.length) {
        lines.push(
          `${result.onlyInLaterInputs.length} keys exist only in a later input and were copied from it (e.g. ${result.onlyInLaterInputs[0]!.key})`,
        );
      }
      for (const { key, count } of result.nonFinite) lines.push(`warning: ${count} NaN/Inf values in ${key}`);
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}

/**
 * "time 4.3 s: 1.9 s waiting for inputs, 0.7 s for output writes, 1.0 s computing, 0.2 s finishing
 * (last hashes, fsync, rename)": which of disk and kernel held the merge up (see WriteTimings).
 */
export function timingsLine(timings: MergeResult["timings"]): string | undefined {
  const { total, inputs, output, compute, finish } = timings;
  if (inputs === undefined || output === undefined || compute === undefined || finish === undefined) return;
  const s = (seconds: number) => `${seconds.toFixed(1)} s`;
  return `time ${s(total)}: ${s(inputs)} waiting for inputs, ${s(output)} for output writes, ${s(compute)} computing, ${s(finish)} finishing (last hashes, fsync, rename)`;
}
