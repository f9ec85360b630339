import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, extname, resolve } from "node:path";
import { type Command, Option } from "commander";
import { defaultHashCacheDir } from "../../hash/index.js";
import { ioError } from "../../io/byte-source.js";
import { defaultLibraryPath, LibraryStore, openLibrary } from "../../library/index.js";
import { parsePromptsFile, parseSeeds, runSample } from "../../preview/run-sample.js";
import { loadRecipe } from "../../recipe/index.js";
import { countBar } from "../count-bar.js";
import {
  addGenerationOptions,
  backendFromFlags,
  type GenerationFlags,
  generationSettings,
} from "../generation-flags.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface SampleFlags extends GenerationFlags {
  prompts: string;
  seeds: string;
  negative: string;
  out?: string;
  library?: string | false;
  keep?: boolean;
  json?: boolean;
}

const RECIPE_EXTENSIONS = new Set([".yaml", ".yml"]);

export function registerSample(program: Command): void {
  addGenerationOptions(
    program
      .command("sample")
      .description(
        "generate sample images of a model or a recipe's merge through your ComfyUI or A1111 backend (gyoza.yaml), with complete metadata, into a folder and the library",
      )
      .argument(
        "<model>",
        "a checkpoint (.safetensors) or a recipe (.yaml): the recipe is merged into the backend's model folder",
      )
      .requiredOption(
        "--prompts <file>",
        "prompts, one a line (`prompt | negative` gives a line its own negative)",
      )
      .option("--seeds <list>", "seeds: 1,2,3 or a range 1-4", "1")
      .option("--negative <text>", "negative prompt for lines without their own", ""),
  )
    .option("--out <dir>", "where the images go (default: samples/<model name>/)")
    .addOption(
      new Option(
        "--library <file>",
        "record the images in this library (default: $GYOZA_LIBRARY or ~/.local/share/gyoza/library.db, when it exists)",
      ),
    )
    .option("--no-library", "do not record the images in a library")
    .option("--keep", "leave the candidate in the backend's model folder afterwards (a later run reuses it)")
    .option(
      "--json",
      "print JSON: the candidate (hashes, recipe key, reused) and each image's file, prompt and seed",
    )
    .action(async (model: string, flags: SampleFlags) => {
      const settings = { negativePrompt: flags.negative, ...generationSettings(flags) };
      const seeds = parseSeeds(flags.seeds);
      const promptsText = await readFile(flags.prompts, "utf8").catch((cause: unknown) => {
        throw ioError(flags.prompts, cause);
      });
      const prompts = parsePromptsFile(promptsText, flags.prompts);
      const backend = await backendFromFlags(flags);

      const modelPath = resolve(model);
      const isRecipe = RECIPE_EXTENSIONS.has(extname(model).toLowerCase());
      const recipe = isRecipe
        ? loadRecipe(
            await readFile(modelPath, "utf8").catch((cause: unknown) => {
              throw ioError(modelPath, cause);
            }),
            { sourceName: model },
          )
        : undefined;
      const modelName = basename(model, extname(model));
      const outDir = resolve(flags.out ?? `samples/${modelName}`);

      const libraryPath =
        flags.library === false
          ? undefined
          : (flags.library ?? (existsSync(defaultLibraryPath()) ? defaultLibraryPath() : undefined));
      const db = libraryPath ? openLibrary(libraryPath) : undefined;
      const bar = countBar("sample", prompts.length * seeds.length, { quiet: flags.json });
      try {
        const result = await runSample({
          backend,
          ...(recipe ? { recipe, recipeBaseDir: dirname(modelPath) } : { modelFile: modelPath }),
          modelName,
          prompts,
          seeds,
          settings,
          outDir,
          keep: flags.keep ?? false,
          ...(db ? { library: new LibraryStore(db) } : {}),
          hashCacheDir: defaultHashCacheDir(),
          onStageProgress: progressBar({ quiet: flags.json }),
          onImage: (done) => bar.tick(done),
          onLog: (line) => process.stderr.write(`gyoza: ${line}\n`),
        });
        bar.stop();
        const { candidate } = result;
        if (flags.json) {
          printJson({
            model: modelPath,
            backend: backend.config.name,
            checkpoint: candidate.checkpointName,
            candidate: candidate.file,
            sha256: candidate.sha256,
            autov2: candidate.autov2,
            autov3: candidate.autov3,
            recipeKey: candidate.recipeKey ?? null,
            reused: candidate.reused,
            removed: result.removed,
            library: libraryPath ?? null,
            outDir,
            images: result.images.map((image) => ({
              file: image.file,
              prompt: image.prompt,
              negativePrompt: image.negativePrompt,
              seed: image.seed,
              libraryImageId: image.libraryImageId ?? null,
            })),
          });
          return;
        }
        const lines = [
          `${candidate.reused ? "reused" : "placed"} ${candidate.checkpointName} (Model hash ${candidate.autov2}, AutoV3 ${candidate.autov3.slice(0, 12)}${candidate.recipeKey ? `, recipe ${candidate.recipeKey.slice(0, 12)}` : ""})`,
          `${result.images.length} images in ${outDir}${libraryPath ? `, recorded in ${libraryPath}` : ""}`,
          result.removed
            ? `removed ${candidate.file} (--keep leaves it for the next run)`
            : `kept ${candidate.file}`,
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
      } finally {
        bar.stop();
        db?.close();
      }
    });
}
