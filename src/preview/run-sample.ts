import { mkdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { GenerationBackend, GenerationParams } from "../backends/types.js";
import { GyozaError, throwIfAborted } from "../errors.js";
import { LibraryImages, readLibraryImage } from "../library/library-images.js";
import type { LibraryStore } from "../library/library-store.js";
import type { ProgressListener } from "../progress.js";
import type { Recipe } from "../recipe/index.js";
import { cleanupCandidates, type StagedCandidate, stageCandidate } from "./stage-candidate.js";
import { writeSampleImage } from "./write-sample-image.js";

/** Largest prompts file read (one prompt a line). */
export const MAX_PROMPTS_BYTES = 1024 * 1024;
/** Most images one run makes (prompts × seeds). */
export const MAX_SAMPLE_IMAGES = 10_000;

export interface SamplePrompt {
  prompt: string;
  /** From `prompt | negative`; undefined when the line has none (the run's --negative applies). */
  negative?: string;
}

/**
 * A prompts file: one prompt a line, `prompt | negative` to give a line its own negative prompt
 * (split at the first ` | `, so A1111's `[cat|dog]` alternation stays in the prompt); blank lines
 * and lines starting with `#` are skipped.
 */
export function parsePromptsFile(text: string, file = "prompts"): SamplePrompt[] {
  if (Buffer.byteLength(text, "utf8") > MAX_PROMPTS_BYTES) {
    throw new GyozaError("limit", `a prompts file is at most ${MAX_PROMPTS_BYTES} bytes`, { file });
  }
  if (text.includes("\0"))
    throw new GyozaError("format", "the prompts file is not text (it holds NUL bytes)", { file });
  const prompts: SamplePrompt[] = [];
  for (const raw of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const split = line.indexOf(" | ");
    prompts.push(
      split < 0
        ? { prompt: line }
        : { prompt: line.slice(0, split).trim(), negative: line.slice(split + 3).trim() },
    );
  }
  if (prompts.length === 0) {
    throw new GyozaError("usage", "the prompts file holds no prompts", {
      file,
      fix: "write one prompt a line (`prompt | negative prompt` for a negative of its own)",
    });
  }
  return prompts;
}

/** `1,2,3` (and ranges `10-13`) → seeds, each a whole number 0 … 2^32−1 (what both backends take). */
export function parseSeeds(text: string): number[] {
  const seeds: number[] = [];
  for (const part of text.split(",").map((item) => item.trim())) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    const [from, to] = range ? [Number(range[1]), Number(range[2])] : [Number(part), Number(part)];
    if (!/^\d+(-\d+)?$/.test(part) || from > to || to > 0xffff_ffff || to - from > MAX_SAMPLE_IMAGES) {
      throw new GyozaError(
        "usage",
        `"${part}" is not a seed (whole numbers 0 to 4294967295, or a range 1-4)`,
        {
          path: "--seeds",
          fix: "e.g. --seeds 1,2,3 or --seeds 100-103",
        },
      );
    }
    for (let seed = from; seed <= to; seed++) seeds.push(seed);
  }
  return seeds;
}

/** `512x768` → width and height (multiples of 8, 64 … 4096, as the backends take). */
/** WIDTHxHEIGHT, each side 64..8192 and a multiple of 8, or undefined (the one rule for --size and a size axis). */
export function imageSizeOf(text: string): { width: number; height: number } | undefined {
  const match = /^(\d+)x(\d+)$/i.exec(text.trim());
  if (!match) return undefined;
  const [width, height] = [Number(match[1]), Number(match[2])];
  const fits = (side: number) => side >= 64 && side <= 8192 && side % 8 === 0;
  return fits(width) && fits(height) ? { width, height } : undefined;
}

export function parseSize(text: string): { width: number; height: number } {
  const size = imageSizeOf(text);
  if (!size) {
    throw new GyozaError(
      "usage",
      `"${text}" is not an image size (WIDTHxHEIGHT, multiples of 8 from 64 to 8192)`,
      {
        path: "--size",
        fix: "e.g. --size 512x768",
      },
    );
  }
  return size;
}

/** What one run makes images with, everything but prompt and seed. */
export type SampleSettings = Omit<GenerationParams, "prompt" | "negativePrompt" | "seed"> & {
  negativePrompt: string;
};

export interface SampleOptions {
  backend: GenerationBackend;
  /** A recipe (merged into the backend's folder) or a ready model file. */
  recipe?: Recipe;
  recipeBaseDir?: string;
  modelFile?: string;
  /** The name images give as `Model:` (the recipe's or file's stem). */
  modelName: string;
  prompts: readonly SamplePrompt[];
  seeds: readonly number[];
  settings: SampleSettings;
  outDir: string;
  /** Keep the candidate in the model folder afterwards (a merge or copy gyoza placed); default: remove it. */
  keep?: boolean;
  /** Record each image in this library as it is written. */
  library?: LibraryStore;
  hashCacheDir?: string | false;
  signal?: AbortSignal;
  /** The merge's or copy's bytes. */
  onStageProgress?: ProgressListener;
  /** Called after each image is written. */
  onImage?: (done: number, total: number, image: SampleImage) => void;
  listAttempts?: number;
  listDelayMs?: number;
  /** Lines for the user while staging (waiting for another process's lock into the same folder). */
  onLog?: (line: string) => void;
}

export interface SampleImage {
  file: string;
  prompt: string;
  negativePrompt: string;
  seed: number;
  libraryImageId?: number;
}

export interface SampleResult {
  candidate: StagedCandidate;
  images: SampleImage[];
  /** Whether the candidate was removed from the model folder at the end. */
  removed: boolean;
}

/** The file name of prompt `index` (0-based) with `seed`: `p001-s42.png`, the same every run. */
export function sampleFileName(index: number, seed: number): string {
  return `p${String(index + 1).padStart(3, "0")}-s${seed}.png`;
}

/**
 * Makes one image per prompt and seed: stages the candidate (a merge is reused when the folder
 * has it), then generates image after image, each written atomically with complete metadata and
 * recorded in the library before the next starts — so an interrupted run keeps every finished image.
 */
export async function runSample(options: SampleOptions): Promise<SampleResult> {
  const total = options.prompts.length * options.seeds.length;
  if (total === 0) throw new GyozaError("usage", "nothing to sample: no prompts or no seeds");
  if (total > MAX_SAMPLE_IMAGES) {
    throw new GyozaError("limit", `${total} images asked for; one run makes at most ${MAX_SAMPLE_IMAGES}`);
  }
  await mkdir(options.outDir, { recursive: true });
  const candidate = await stageCandidate({
    backend: options.backend,
    ...(options.recipe ? { recipe: options.recipe } : {}),
    ...(options.recipeBaseDir !== undefined ? { recipeBaseDir: options.recipeBaseDir } : {}),
    ...(options.modelFile ? { modelFile: options.modelFile } : {}),
    ...(options.hashCacheDir !== undefined ? { hashCacheDir: options.hashCacheDir } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onStageProgress ? { onProgress: options.onStageProgress } : {}),
    ...(options.listAttempts !== undefined ? { listAttempts: options.listAttempts } : {}),
    ...(options.listDelayMs !== undefined ? { listDelayMs: options.listDelayMs } : {}),
    ...(options.onLog ? { onLog: options.onLog } : {}),
  });
  const libraryImages = options.library ? new LibraryImages(options.library.db) : undefined;
  if (options.library) options.library.addRoot(options.outDir);
  const images: SampleImage[] = [];
  let removed = false;
  try {
    for (const [index, entry] of options.prompts.entries()) {
      for (const seed of options.seeds) {
        throwIfAborted(options.signal);
        const params: GenerationParams = {
          ...options.settings,
          prompt: entry.prompt,
          negativePrompt: entry.negative ?? options.settings.negativePrompt,
          seed,
        };
        const generated = await options.backend.generate(
          { ...params, checkpoint: candidate.checkpointName },
          options.signal ? { signal: options.signal } : {},
        );
        const file = join(options.outDir, sampleFileName(index, seed));
        await writeSampleImage(file, {
          image: generated,
          params,
          model: { name: options.modelName, autov2: candidate.autov2 },
          ...(candidate.recipeKey ? { recipeKey: candidate.recipeKey } : {}),
        });
        const image: SampleImage = {
          file,
          prompt: params.prompt,
          negativePrompt: params.negativePrompt,
          seed,
        };
        if (libraryImages) {
          const info = await stat(file);
          const walked = { path: file, size: info.size, mtimeMs: info.mtimeMs, inode: info.ino };
          image.libraryImageId = libraryImages.write(walked, await readLibraryImage(file)).id;
        }
        images.push(image);
        options.onImage?.(images.length, total, image);
      }
    }
  } finally {
    if (!options.keep && !candidate.reused) {
      const name = basename(candidate.file);
      const result = await cleanupCandidates({
        folder: options.backend.config.modelFolder,
        only: [name],
      }).catch(() => undefined);
      removed = result?.removed.includes(name) ?? false;
    }
  }
  return { candidate, images, removed };
}
