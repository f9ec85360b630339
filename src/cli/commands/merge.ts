import { readFile } from "node:fs/promises";
import { dirname, relative, resolve } from "node:path";
import { type Command, Option } from "commander";
import type { MergeResult } from "../../engine/execute-merge.js";
import { runRecipe } from "../../engine/run-recipe.js";
import { GyozaError } from "../../errors.js";
import { defaultHashCacheDir } from "../../hash/hash-cache.js";
import { ioError } from "../../io/byte-source.js";
import { loadKernel } from "../../kernels/index.js";
import type { KernelName } from "../../kernels/merge-kernel.js";
import { formatPlan, planRecipe } from "../../plan/index.js";
import {
  loadRecipe,
  type OutputDtype,
  type OutputOverrides,
  type Recipe,
  type RecipeVae,
  recipeFromInlineArgs,
  withOutputOverrides,
} from "../../recipe/index.js";
import {
  choiceFlag,
  dtypeOption,
  hashCacheOption,
  integerFlag,
  mkdirOption,
  numberFlag,
  prepareOutputFolder,
} from "../flags.js";
import { formatBytes, printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";
import { writeRecipeFile } from "../write-recipe-file.js";

interface MergeFlags {
  output?: string;
  method: string;
  alpha?: string;
  beta?: string;
  base?: number;
  dtype: OutputDtype;
  prune: boolean;
  vae?: "keep-a" | "take-b" | "merge";
  bakeVae?: string;
  vaeSlot?: string;
  metadata?: "full" | "hashes" | "none";
  arithmetic?: "fp32" | "lerp";
  blockRule?: "classic" | "sd-mecha";
  seed?: number;
  title?: string;
  allowExtrapolation?: boolean;
  saveRecipe?: string;
  mkdir?: boolean;
  kernel?: string;
  hashCache: boolean;
  plan?: boolean;
  json?: boolean;
  lora?: string[];
}

/** Flags that shape a step: the one-step form only; a recipe file says them itself. */
const STEP_FLAGS = [
  ["method", "--method"],
  ["alpha", "--alpha"],
  ["beta", "--beta"],
  ["base", "--base"],
  ["arithmetic", "--arithmetic"],
  ["blockRule", "--block-rule"],
  ["seed", "--seed"],
  ["allowExtrapolation", "--allow-extrapolation"],
  ["lora", "--lora"],
] as const;

export function registerMerge(program: Command): void {
  program
    .command("merge")
    .description(
      "merge checkpoints: `gyoza merge RECIPE.yaml`, or the one-step form `gyoza merge A B --alpha COSINE -o OUT`",
    )
    .argument("<files...>", "a recipe (.yaml), or the models in the method's input order (a b [c])")
    .option("-o, --output <file>", "output file (with a recipe: replaces the recipe's output.path)")
    .option("--method <id>", "merge method (one-step form)", "weighted_sum")
    .option(
      "--alpha <weights>",
      "a number, 25/26 comma-separated values (BASE first), a preset name (COSINE…)",
    )
    .option("--beta <weights>", "second weight, for methods that take one")
    .addOption(
      new Option("--base <number>", "BASE weight (text encoder; VAE only with --vae merge)").argParser(
        numberFlag("--base"),
      ),
    )
    .addOption(dtypeOption("output precision", "fp16"))
    .option("--prune", "drop EMA and keys outside the architecture (default)")
    .option("--no-prune", "keep every key of the inputs, EMA included")
    .addOption(
      new Option("--vae <policy>", "keep-a (default), take-b or merge; --bake-vae FILE bakes one").argParser(
        choiceFlag("--vae", ["keep-a", "take-b", "merge"] as const),
      ),
    )
    .option("--bake-vae <file>", "replace the VAE with this file's (.ckpt, .safetensors, .vae.pt)")
    .option("--vae-slot <slot>", "the slot whose weight the VAE takes (with --vae merge)")
    .addOption(
      new Option(
        "--metadata <level>",
        "provenance written into the output: full (default), hashes or none",
      ).argParser(choiceFlag("--metadata", ["full", "hashes", "none"] as const)),
    )
    .addOption(
      new Option(
        "--arithmetic <mode>",
        "fp32 (torch's weighted sum, default) or lerp (supermerger's torch.lerp)",
      ).argParser(choiceFlag("--arithmetic", ["fp32", "lerp"] as const)),
    )
    .addOption(
      new Option("--block-rule <rule>", "key → block rule: classic (default) or sd-mecha").argParser(
        choiceFlag("--block-rule", ["classic", "sd-mecha"] as const),
      ),
    )
    .addOption(new Option("--seed <n>", "seed for random methods (DARE)").argParser(integerFlag("--seed")))
    .option("--title <title>", "modelspec.title of the output")
    .option("--allow-extrapolation", "accept mixing weights outside 0..1")
    .option(
      "--lora <spec>",
      "FILE:RATIO[:WEIGHTS]: bake a LoRA in after the merge (one model: into it), repeatable; WEIGHTS: 17/26 (SDXL 12/20) block weights or a preset (OUTALL …)",
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option("--save-recipe <file>", "also write the merge as a recipe file (paths relative to its folder)")
    .addOption(mkdirOption())
    .addOption(hashCacheOption())
    .option("--kernel <name>", "arithmetic kernel: native, wasm or js (default: fastest available)")
    .option("--plan", "print what the merge would do (every key's op and weight) without reading tensor data")
    .option("--json", "print the result (with --plan: the plan) as JSON")
    .action(async (files: string[], flags: MergeFlags, command: Command) => {
      const given = (name: string) => command.getOptionValueSource(name) === "cli";
      const { recipe, baseDir, overrides } = await mergeRecipe(files, flags, given);
      if (flags.plan) {
        const planned = await planRecipe(recipe, { baseDir });
        await planned.close();
        if (flags.json) printJson(planned.plan);
        else process.stdout.write(formatPlan(planned.plan));
        return;
      }
      if (flags.saveRecipe) {
        await prepareOutputFolder(flags.saveRecipe, flags.mkdir);
        await writeRecipeFile(recipe, flags.saveRecipe, baseDir);
      }
      await prepareOutputFolder(resolve(baseDir, recipe.output.path), flags.mkdir);
      const kernel = await loadKernel((flags.kernel as KernelName | undefined) ?? "auto");
      const result = await runRecipe(recipe, {
        baseDir,
        kernel,
        onProgress: progressBar({ quiet: flags.json ?? false }),
        hashCacheDir: flags.hashCache === false ? false : defaultHashCacheDir(),
        ...(Object.keys(overrides).length > 0 ? { overrides } : {}),
      });
      if (flags.json) {
        printJson({
          ...result,
          dtype: recipe.output.dtype,
          prune: recipe.output.prune,
          overrides,
          kernel: kernel.name,
        });
        return;
      }
      process.stdout.write(mergeSummary(result, recipe, kernel.name, overrides));
    });
}

/** The recipe a merge command stands for, the folder its paths are relative to, and what the flags changed. */
async function mergeRecipe(
  files: string[],
  flags: MergeFlags,
  given: (name: string) => boolean,
): Promise<{ recipe: Recipe; baseDir: string; overrides: Record<string, unknown> }> {
  if (!(files.length === 1 && /\.ya?ml$/i.test(files[0]!))) {
    const [a, b, c, ...rest] = files;
    if (rest.length > 0 || files.some((file) => /\.ya?ml$/i.test(file)))
      throw new GyozaError(
        "usage",
        "give either one recipe file or the models of a one-step merge (a b [c])",
      );
    const vae = vaeFromFlags(flags, (file) => file);
    const recipe = recipeFromInlineArgs({
      a: a!,
      ...(b ? { b } : {}),
      ...(c ? { c } : {}),
      method: flags.method,
      ...(flags.alpha !== undefined ? { alpha: flags.alpha } : {}),
      ...(flags.beta !== undefined ? { beta: flags.beta } : {}),
      ...(flags.base !== undefined ? { base: flags.base } : {}),
      output: flags.output ?? "",
      dtype: flags.dtype,
      prune: flags.prune,
      ...(vae
        ? {
            vae: vae.policy,
            ...(vae.file ? { vaeFile: vae.file } : {}),
            ...(vae.slot ? { vaeSlot: vae.slot } : {}),
          }
        : {}),
      ...(flags.metadata ? { metadata: flags.metadata } : {}),
      ...(flags.arithmetic ? { arithmetic: flags.arithmetic } : {}),
      ...(flags.blockRule ? { blockRule: flags.blockRule } : {}),
      ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
      ...(flags.title ? { title: flags.title } : {}),
      ...(flags.allowExtrapolation ? { extrapolate: true } : {}),
      ...(flags.lora ? { loras: flags.lora } : {}),
    });
    return { recipe, baseDir: process.cwd(), overrides: {} };
  }
  const path = files[0]!;
  const stepFlags = STEP_FLAGS.filter(([name]) => given(name)).map(([, flag]) => flag);
  if (stepFlags.length > 0) {
    throw new GyozaError(
      "usage",
      `${stepFlags.join(", ")} only apply to the one-step form (gyoza merge A B …)`,
      {
        file: path,
        fix: "a recipe says its weights and methods itself: edit its steps (output flags such as -o, --dtype, --no-prune, --bake-vae do override it)",
      },
    );
  }
  const text = await readFile(path, "utf8").catch((cause) => {
    throw ioError(path, cause);
  });
  const loaded = loadRecipe(text, { sourceName: path });
  const baseDir = dirname(resolve(path));
  // Output flags override the recipe; the merge records what changed in its provenance. Paths
  // typed on the command line are relative to the current folder, the recipe's to its own.
  const fromHere = (file: string) => relative(baseDir, resolve(file));
  const vae = vaeFromFlags(flags, fromHere);
  const wanted: OutputOverrides = {
    ...(flags.output !== undefined ? { path: fromHere(flags.output) } : {}),
    ...(given("dtype") ? { dtype: flags.dtype } : {}),
    ...(given("prune") ? { prune: flags.prune } : {}),
    ...(vae ? { vae } : {}),
    ...(flags.metadata ? { metadata: flags.metadata } : {}),
    ...(flags.title ? { title: flags.title } : {}),
  };
  const { recipe, changed } = withOutputOverrides(loaded, wanted);
  return { recipe, baseDir, overrides: changed };
}

function vaeFromFlags(flags: MergeFlags, path: (file: string) => string): RecipeVae | undefined {
  if (flags.bakeVae !== undefined) {
    if (flags.vae !== undefined)
      throw new GyozaError("usage", `--bake-vae and --vae ${flags.vae} contradict each other`, {
        fix: "--bake-vae FILE bakes that VAE; leave out --vae",
      });
    return { policy: "bake", file: path(flags.bakeVae) };
  }
  if (flags.vaeSlot !== undefined && flags.vae !== "merge")
    throw new GyozaError("usage", "--vae-slot only applies with --vae merge", { path: "--vae-slot" });
  if (flags.vae === undefined) return undefined;
  return { policy: flags.vae, ...(flags.vaeSlot ? { slot: flags.vaeSlot } : {}) };
}

/** What the merge did, in words: output, precision, pruning, VAE, overrides, timings, warnings. */
export function mergeSummary(
  result: MergeResult,
  recipe: Recipe,
  kernel: string,
  overrides: Record<string, unknown>,
): string {
  const vae = recipe.output.vae;
  const lines = [
    `wrote ${result.output}: ${result.tensors} tensors (${result.merged} merged, ${result.copied} copied), ${formatBytes(result.bytes)}, ${result.architecture}, ${recipe.output.dtype}, kernel ${kernel}`,
    result.pruned
      ? `pruned ${result.pruned} tensors (EMA copies and keys outside the architecture; --no-prune keeps them)`
      : recipe.output.prune
        ? "pruned: nothing to drop"
        : "not pruned (--no-prune): every key of the inputs kept",
    vae.policy === "bake"
      ? `VAE baked from ${vae.file}`
      : `VAE: ${vae.policy}${vae.slot ? ` (slot ${vae.slot})` : ""}`,
  ];
  for (const lora of result.loras) {
    const weights = lora.weights === "ALL" ? "" : `, block weights ${lora.weights}`;
    lines.push(
      `baked LoRA ${lora.source} ×${lora.ratio}${weights}: ${lora.modules} modules (step ${lora.step})`,
    );
  }
  if (result.dataSha256)
    lines.push(`AutoV3 ${result.dataSha256.slice(0, 12)}  (modelspec.hash_sha256 0x${result.dataSha256})`);
  for (const [field, value] of Object.entries(overrides))
    lines.push(`override: ${field} = ${JSON.stringify(value)} (recorded in the output's metadata)`);
  const time = timingsLine(result.timings);
  if (time) lines.push(time);
  if (result.onlyInLaterInputs.length) {
    lines.push(
      `${result.onlyInLaterInputs.length} keys exist only in a later input and were copied from it (e.g. ${result.onlyInLaterInputs[0]!.key})`,
    );
  }
  for (const { key, count } of result.nonFinite) lines.push(`warning: ${count} NaN/Inf values in ${key}`);
  for (const warning of result.warnings) lines.push(`warning: ${warning.message}`);
  return `${lines.join("\n")}\n`;
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
