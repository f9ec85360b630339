import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { runRecipe } from "../engine/run-recipe.js";
import { GyozaError } from "../errors.js";
import { hashFile } from "../hash/index.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { decodeJsonString } from "../metadata/decode-metadata.js";
import type { ProgressListener } from "../progress.js";
import { type Recipe, recipeFromData } from "../recipe/index.js";
import { type FileMatch, findByHash, listModelFiles, type MatchedBy } from "./search-by-hash.js";

export interface ReplayOptions {
  /** Folders searched (recursively) for the recipe's inputs, found by sha256 or AutoV3. */
  searchDirs: readonly string[];
  /** Where the rebuilt file goes (kept). Default: a temporary file in `workDir`, removed after the check. */
  output?: string;
  /** Folder for the temporary output. Default: the current directory. */
  workDir?: string;
  /** Hash cache directory, or false for none. Default: the user's cache. */
  hashCacheDir?: string | false;
  kernel?: MergeKernel;
  onProgress?: ProgressListener;
}

export interface ReplayedInput {
  name: string;
  /** The path the recipe recorded (absent when the file was written with metadata: hashes). */
  recordedPath?: string;
  path: string;
  matchedBy: MatchedBy | "file-name";
}

export interface ReplayResult {
  file: string;
  identical: boolean;
  /** AutoV3 of the file replayed (computed from its bytes), lowercase, 64 digits. */
  expectedAutoV3: string;
  /** `modelspec.hash_sha256` of the file without "0x", when it records one. */
  recordedAutoV3?: string;
  /** AutoV3 of the rebuilt file. */
  actualAutoV3: string;
  /** The rebuilt file, or null when it was a temporary file and has been removed. */
  output: string | null;
  inputs: ReplayedInput[];
  /** Model files under the search folders, and how many were hashed before every input was found. */
  searched: { candidates: number; hashed: number };
}

/** The gyoza recipe a merge embedded in its `__metadata__` (as plain data, not yet validated). */
export function embeddedRecipeData(metadata: Readonly<Record<string, string>>, file: string): Recipe {
  const text = metadata.gyoza_recipe;
  if (text === undefined) {
    throw new GyozaError("recipe", "the file carries no gyoza recipe, so it cannot be replayed", {
      file,
      fix: metadata.sd_merge_recipe
        ? "it has an A1111/supermerger recipe: `gyoza recipe from FILE` converts what can be carried over"
        : "only merges written by gyoza with metadata full or hashes can be replayed",
    });
  }
  const data = decodeJsonString(text);
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new GyozaError("format", "gyoza_recipe is not a JSON object", { file });
  }
  return data as Recipe;
}

/**
 * Rebuilds a gyoza-made merge from the recipe in its metadata, finding every input by hash in the
 * search folders (paths in the recipe are ignored: files get renamed and moved), and checks that
 * the result's tensor data is bit-identical (same AutoV3; metadata such as the date may differ).
 */
export async function replayMerge(file: string, options: ReplayOptions): Promise<ReplayResult> {
  const checkpoint = await openCheckpoint(file);
  const metadata = { ...checkpoint.metadata };
  await checkpoint.close();
  const data = structuredClone(embeddedRecipeData(metadata, file));
  const cacheDir = options.hashCacheDir;
  for (const [name, input] of Object.entries(data.inputs ?? {})) {
    if (!input.sha256 && !input.autov3) {
      throw new GyozaError("recipe", `input "${name}" records no hash to find it by`, {
        file,
        path: `inputs.${name}`,
      });
    }
  }
  const wanted = Object.entries(data.inputs ?? {}).map(([id, input]) => ({
    id,
    hashes: { sha256: input.sha256, autov3: input.autov3 },
    ...(input.path ? { nameHint: basename(input.path.replace(/\\/g, "/")) } : {}),
  }));
  const search = await findByHash(options.searchDirs, wanted, {
    ...(cacheDir !== undefined ? { cacheDir } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const inputs = locateInputs(data, search.found, options.searchDirs, file);
  const output = options.output ? resolve(options.output) : temporaryOutput(file, options.workDir);
  if (output === resolve(file) || Object.values(data.inputs ?? {}).some((input) => input.path === output)) {
    throw new GyozaError(
      "usage",
      "the rebuilt file would replace the file it is checked against or an input",
      {
        file: output,
        fix: "choose another -o path",
      },
    );
  }
  // Hashed before the rebuild, so nothing written meanwhile can change what it is compared with.
  const expected = await hashFile(file, {
    algorithms: ["autov3"],
    ...(cacheDir !== undefined ? { cacheDir } : {}),
  });
  data.output = { ...data.output, path: output };
  const vae = data.output.vae;
  if (vae?.policy === "bake" && vae.file) {
    const paths = await listModelFiles(options.searchDirs);
    const located = locateByName(vae.file, paths, "output.vae.file", options.searchDirs, file);
    inputs.push({ name: "vae", recordedPath: vae.file, ...located });
    data.output.vae = { ...vae, file: located.path };
  }
  const recipe = recipeFromData(data, { sourceName: `${file} (gyoza_recipe)` });
  try {
    const result = await runRecipe(recipe, {
      baseDir: process.cwd(),
      ...(options.kernel ? { kernel: options.kernel } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(cacheDir !== undefined ? { hashCacheDir: cacheDir } : {}),
    });
    const expectedAutoV3 = expected.autoV3Full!.toLowerCase();
    const actualAutoV3 = (result.dataSha256 ?? "").toLowerCase();
    const recorded = metadata["modelspec.hash_sha256"]?.replace(/^0x/i, "").toLowerCase();
    if (!options.output) await rm(output, { force: true });
    return {
      file,
      identical: actualAutoV3 === expectedAutoV3,
      expectedAutoV3,
      ...(recorded ? { recordedAutoV3: recorded } : {}),
      actualAutoV3,
      output: options.output ? output : null,
      inputs,
      searched: { candidates: search.candidates, hashed: search.hashed },
    };
  } catch (error) {
    if (!options.output) await rm(output, { force: true });
    throw error;
  }
}

function locateInputs(
  recipe: Recipe,
  found: ReadonlyMap<string, FileMatch>,
  searchDirs: readonly string[],
  file: string,
): ReplayedInput[] {
  const located: ReplayedInput[] = [];
  for (const [name, input] of Object.entries(recipe.inputs ?? {})) {
    const match = found.get(name);
    if (!match) {
      const hash = input.sha256 ? `sha256 ${input.sha256}` : `AutoV3 ${input.autov3}`;
      throw new GyozaError(
        "io",
        `input "${name}"${input.path ? ` (recorded as ${input.path})` : ""}: no file with ${hash} under ${searchDirs.join(", ")}`,
        { file, fix: "add the folder that holds it with --search DIR" },
      );
    }
    located.push({
      name,
      ...(input.path ? { recordedPath: input.path } : {}),
      path: match.path,
      matchedBy: match.matchedBy,
    });
    input.path = match.path;
  }
  return located;
}

/** A baked VAE is recorded by path only (no hash): find a file of the same name in the search folders. */
function locateByName(
  recorded: string,
  paths: readonly string[],
  path: string,
  searchDirs: readonly string[],
  file: string,
): { path: string; matchedBy: "file-name" } {
  const name = basename(recorded.replace(/\\/g, "/"));
  const match = paths.find((candidate) => basename(candidate) === name);
  if (!match) {
    throw new GyozaError("io", `the baked VAE ${recorded} is not under ${searchDirs.join(", ")}`, {
      file,
      path,
      fix: "the recipe records the VAE by name only: put a file with that name in a --search folder",
    });
  }
  return { path: match, matchedBy: "file-name" };
}

function temporaryOutput(file: string, workDir: string | undefined): string {
  const stem = basename(file).replace(/\.[^.]+$/, "");
  return join(
    resolve(workDir ?? process.cwd()),
    `.${stem}.replay-${randomBytes(4).toString("hex")}.safetensors`,
  );
}
