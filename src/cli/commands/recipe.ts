import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { GyozaError } from "../../errors.js";
import { defaultHashCacheDir } from "../../hash/index.js";
import { type ImportedRecipe, importMergeRecipeFromFile } from "../../lineage/index.js";
import { saveRecipe } from "../../recipe/index.js";
import { hashCacheOption, mkdirOption, prepareOutputFolder, searchOption } from "../flags.js";
import { printJson } from "../output.js";
import { writeRecipeFile } from "../write-recipe-file.js";

interface RecipeFromFlags {
  output?: string;
  search?: string[];
  model?: string;
  json?: boolean;
  hashCache: boolean;
  mkdir?: boolean;
}

export function registerRecipe(program: Command): void {
  const recipe = program.command("recipe").description("work with gyoza recipes");
  recipe
    .command("from")
    .description(
      "the recipe of a merged file: a gyoza merge's own, or its A1111 / supermerger sd_merge_recipe imported where representable, listing what cannot be carried over",
    )
    .argument("<file>", "a merged .safetensors whose metadata holds gyoza_recipe or sd_merge_recipe")
    .option(
      "-o, --output <recipe>",
      "write the recipe here (paths relative to its folder; default: print it)",
    )
    .addOption(searchOption("a folder where the inputs are found by sha256 (their paths go into the recipe)"))
    .option(
      "--model <path>",
      "output.path of the recipe (default: from custom_name, else imported.safetensors)",
    )
    .addOption(mkdirOption())
    .addOption(hashCacheOption())
    .option("--json", "print { tool, recipe, notCarried } as JSON")
    .action(async (file: string, flags: RecipeFromFlags) => {
      if (flags.output) await prepareOutputFolder(flags.output, flags.mkdir);
      const imported = await importMergeRecipeFromFile(file, {
        ...(flags.search ? { searchDirs: flags.search } : {}),
        hashCacheDir: flags.hashCache ? defaultHashCacheDir() : false,
        ...(flags.model ? { outputPath: flags.model } : {}),
      });
      if (flags.json) printJson(imported);
      else if (imported.recipe && flags.output) {
        // Inputs found here move with the recipe; names of inputs not found stay as recorded.
        await writeRecipeFile(imported.recipe, flags.output, process.cwd(), {
          header: recipeHeader(imported, file),
          movesInput: (_, path) => existsSync(resolve(path)),
        });
        process.stdout.write(`wrote ${flags.output}\n${formatNotCarried(imported)}`);
      } else if (imported.recipe) process.stdout.write(recipeText(imported, file));
      else process.stdout.write(formatNotCarried(imported));
      if (!imported.recipe) {
        throw new GyozaError("recipe", `the ${imported.tool} merge cannot be expressed as a gyoza recipe`, {
          file,
          fix: "see the reasons listed above",
        });
      }
    });
}

/** The recipe's YAML, headed by comments saying where it came from and what it leaves out. */
export function recipeText(imported: ImportedRecipe, file: string): string {
  return `${recipeHeader(imported, file)}${saveRecipe(imported.recipe!)}`;
}

function recipeHeader(imported: ImportedRecipe, file: string): string {
  const source = imported.tool === "gyoza" ? "gyoza_recipe" : `${imported.tool} sd_merge_recipe`;
  const header = [`# imported from the ${source} of ${file}`];
  for (const line of formatNotCarried(imported).trimEnd().split("\n")) if (line) header.push(`# ${line}`);
  return `${header.join("\n")}\n`;
}

export function formatNotCarried(imported: ImportedRecipe): string {
  if (imported.notCarried.length === 0) return "everything recorded was carried over\n";
  const changes = imported.notCarried.some((entry) => entry.changesResult);
  const lines = [
    changes
      ? "not carried over (! = the result will differ from the original file):"
      : "not carried over (metadata or rounding only):",
  ];
  for (const entry of imported.notCarried) {
    const value = entry.value === undefined ? "" : ` = ${JSON.stringify(entry.value)}`;
    lines.push(`  ${entry.changesResult ? "!" : "-"} ${entry.field}${value}: ${entry.reason}`);
  }
  return `${lines.join("\n")}\n`;
}
