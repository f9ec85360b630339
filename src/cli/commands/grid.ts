import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import type { GenerationParams } from "../../backends/types.js";
import { GyozaError } from "../../errors.js";
import { defaultHashCacheDir } from "../../hash/index.js";
import { ioError } from "../../io/byte-source.js";
import type { Family } from "../../merge/index.js";
import { planRecipe } from "../../plan/index.js";
import { checkDistinctAxes, type GridAxis, parseGridAxis } from "../../preview/grid-axes.js";
import { runGrid } from "../../preview/run-grid.js";
import { loadRecipe, validateRecipe } from "../../recipe/index.js";
import { countBar } from "../count-bar.js";
import { integerFlag } from "../flags.js";
import {
  addGenerationOptions,
  backendFromFlags,
  type GenerationFlags,
  generationSettings,
} from "../generation-flags.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface GridFlags extends GenerationFlags {
  x: string;
  y?: string;
  z?: string;
  prompt: string;
  negative: string;
  seed: number;
  out: string;
  json?: boolean;
}

export function registerGrid(program: Command): void {
  addGenerationOptions(
    program
      .command("grid")
      .description(
        "an XY/XYZ grid of a recipe through your ComfyUI or A1111 backend (gyoza.yaml): each cell a merge (reused when equal) + an image with metadata; grid.png, cells/, recipes/, grid.json. Run it again to resume",
      )
      .argument("<recipe>", "the recipe (.yaml) the axes vary")
      .requiredOption(
        "--x <axis>",
        'PARAMETER=VALUES: alpha, beta, OUT03 (a block), preset, method, STEP.alpha, input.NAME (a model), seed, prompt (a|b or @file), negative, clip_skip, vae, cfg, steps, sampler, scheduler, size; ranges 0:1:0.25. e.g. "OUT03=0,0.2,0.4"',
      )
      .option("--y <axis>", 'the rows, e.g. "seed=1,2,3"')
      .option("--z <axis>", 'one section per value, e.g. "clip_skip=1,2"')
      .requiredOption("--prompt <text>", "the prompt (a prompt axis replaces it)")
      .option("--negative <text>", "negative prompt", "")
      .option("--seed <n>", "seed (a seed axis replaces it)", integerFlag("--seed", 0, 0xffff_ffff), 1),
  )
    .requiredOption("--out <dir>", "the grid's folder (created; the same command on it resumes)")
    .option(
      "--json",
      "print JSON: the files, merges made, cells generated and failed, and every cell's record",
    )
    .action(async (recipeFile: string, flags: GridFlags) => {
      const recipePath = resolve(recipeFile);
      const text = await readFile(recipePath, "utf8").catch((cause: unknown) => {
        throw ioError(recipePath, cause);
      });
      const recipe = loadRecipe(text, { sourceName: recipeFile });
      const outputStep = validateRecipe(recipe, { file: recipeFile });
      const recipeBaseDir = dirname(recipePath);
      const family = await familyOf(recipe, recipeBaseDir);
      const context = { recipe, outputStep, family };
      const axes: GridAxis[] = [parseGridAxis("x", flags.x, context)];
      if (flags.y) axes.push(parseGridAxis("y", flags.y, context));
      if (flags.z) {
        if (!flags.y) throw new GyozaError("usage", "--z needs --y", { fix: "give the rows first (--y)" });
        axes.push(parseGridAxis("z", flags.z, context));
      }
      checkDistinctAxes(axes);
      const params: GenerationParams = {
        prompt: flags.prompt,
        negativePrompt: flags.negative,
        seed: flags.seed,
        ...generationSettings(flags),
      };
      const backend = await backendFromFlags(flags);
      const outDir = resolve(flags.out);
      const total = axes.reduce((count, axis) => count * axis.values.length, 1);
      const bar = countBar("grid cells", total, { quiet: flags.json });
      const mergeBar = progressBar({ quiet: flags.json });
      try {
        const result = await runGrid({
          recipe,
          recipeBaseDir,
          family,
          outputStep,
          axes,
          params,
          backend,
          outDir,
          ...(recipe.output.title ? { title: recipe.output.title } : {}),
          hashCacheDir: defaultHashCacheDir(),
          onProgress: mergeBar,
          onLog: (line) => process.stderr.write(`gyoza: ${line}\n`),
          onEvent: (event) => {
            if (event.type === "plan") bar.tick(event.alreadyDone);
            if (event.type === "cell") bar.tick(event.done);
          },
        });
        bar.stop();
        if (result.failed > 0) process.exitCode = 1;
        if (flags.json) {
          printJson({
            outDir,
            index: result.indexFile,
            image: result.imageFile,
            merges: result.merges,
            generated: result.generated,
            failed: result.failed,
            cells: result.index.cells,
          });
          return;
        }
        const failedCells = result.index.cells.filter((cell) => cell.status === "failed");
        const lines = [
          `${result.index.cells.length - failedCells.length}/${total} cells in ${outDir} (${result.generated} generated now, ${result.merges} merges)`,
          `grid: ${result.imageFile}`,
          `index: ${join(outDir, "grid.json")}`,
          ...failedCells.map((cell) => `failed: ${cell.labels.join(", ")}: ${cell.error}`),
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
      } finally {
        bar.stop();
      }
    });
}

/** The inputs' family, from their headers (nothing is merged). */
async function familyOf(recipe: ReturnType<typeof loadRecipe>, baseDir: string): Promise<Family> {
  const planned = await planRecipe(
    { ...recipe, output: { ...recipe.output, path: join(baseDir, "gyoza-grid-plan.safetensors") } },
    { baseDir },
  );
  try {
    return planned.detection.family as Family;
  } finally {
    await planned.close();
  }
}
