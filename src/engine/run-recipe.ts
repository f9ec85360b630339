import type { AutomixOrigin } from "../automix/automix-origin.js";
import { GyozaError, throwIfAborted } from "../errors.js";
import { hashFile } from "../hash/index.js";
import { loadKernel, nativeCachedBytes, nativeReadAhead } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { MethodRegistry } from "../merge/index.js";
import { outputStepOf, planRecipe } from "../plan/index.js";
import type { ProgressListener } from "../progress.js";
import type { Recipe } from "../recipe/index.js";
import type { CachedBytes } from "../stream/input-reads.js";
import { executeMerge, type MergeResult } from "./execute-merge.js";

export { outputStepOf };

export interface RunRecipeOptions {
  /** Relative paths in the recipe are resolved from here (the recipe file's folder). */
  baseDir?: string;
  /** The merge kernel (`loadKernel()`'s choice by default). */
  kernel?: MergeKernel;
  /** The merge methods recipes may name (`builtinMethods` by default). */
  methods?: MethodRegistry;
  /** Receives the merge's progress events (start, bytes written, finish). */
  onProgress?: ProgressListener;
  /** Where input hashes are cached (`hashes.json`), or false (the default) for no cache. */
  hashCacheDir?: string | false;
  /**
   * Stops the merge: checked before the inputs are opened and between output chunks, so the merge
   * rejects with an "interrupted" GyozaError soon after the abort, its temp output removed and no
   * output written. (Hashing of the inputs, which runs alongside, reads on to its end unseen.)
   */
  signal?: AbortSignal;
  /**
   * The recipe recorded in the output's provenance, when it is not the one run: a candidate staged
   * for sampling runs a copy with absolute input paths and a temp output path, but records the
   * recipe as written, so its bytes do not depend on where it was merged.
   */
  recordedRecipe?: Recipe;
  /** `modelspec.date` (default `SOURCE_DATE_EPOCH` or now, see engine/source-date.ts). */
  date?: Date;
  /** Output settings the caller changed on the loaded recipe (`{"output.dtype": "fp32"}`), recorded in the provenance. */
  overrides?: Record<string, unknown>;
  /** The automix study trial this recipe is the best candidate of, recorded as `gyoza_automix`. */
  automix?: AutomixOrigin;
  /**
   * The page-cache probe deciding which inputs are read past the cache (the native addon's by default;
   * tests pass their own).
   */
  cachedBytes?: CachedBytes;
}

/**
 * Evaluates a recipe: opens its inputs (checking expected hashes first), plans the merge from their
 * headers (architectures checked before anything is allocated, every step's weights resolved once)
 * and streams the plan into a temp file renamed over `output.path` only when complete (see
 * `RunRecipeOptions.signal` to stop it).
 */
export async function runRecipe(recipe: Recipe, options: RunRecipeOptions = {}): Promise<MergeResult> {
  throwIfAborted(options.signal);
  const readAhead = nativeReadAhead();
  const cachedBytes = options.cachedBytes ?? nativeCachedBytes();
  const planned = await planRecipe(recipe, {
    ...(options.baseDir !== undefined ? { baseDir: options.baseDir } : {}),
    ...(options.methods ? { methods: options.methods } : {}),
    beforeOpen: async (name, path) => {
      const input = recipe.inputs[name]!;
      await verifyExpectedHash(name, path, input.sha256, input.autov3, options.hashCacheDir);
    },
  });
  try {
    const outputStep = recipe.steps[outputStepOf(recipe)]!;
    return await executeMerge(
      {
        plan: planned.plan,
        sources: planned.sources,
        inputs: planned.inputs,
        detection: planned.detection,
        ...(options.methods ? { methods: options.methods } : {}),
        provenance: {
          level: recipe.output.metadata,
          ...(recipe.output.title ? { title: recipe.output.title } : {}),
          ...(recipe.output.description ? { description: recipe.output.description } : {}),
          ...(recipe.output.author ? { author: recipe.output.author } : {}),
          ...(recipe.output.clip_skip !== undefined ? { clipSkip: recipe.output.clip_skip } : {}),
          recipe: JSON.parse(JSON.stringify(options.recordedRecipe ?? recipe)) as Record<string, unknown>,
          ...(options.date ? { date: options.date } : {}),
          ...(options.overrides ? { overrides: options.overrides } : {}),
          ...(options.automix ? { automix: options.automix } : {}),
          summary: {
            method: outputStep.method,
            multiplier:
              typeof outputStep.alpha === "object"
                ? JSON.stringify(outputStep.alpha)
                : String(outputStep.alpha ?? ""),
            saveAsHalf: recipe.output.dtype === "fp16",
            bakeInVae: recipe.output.vae.policy === "bake" ? (recipe.output.vae.file ?? null) : null,
            discardWeights: recipe.output.prune ? "model_ema" : "",
          },
          unetDtype: recipe.output.dtype,
        },
        hashCacheDir: options.hashCacheDir ?? false,
        signal: options.signal,
        ...(readAhead ? { readAhead } : {}),
        ...(cachedBytes ? { cachedBytes } : {}),
      },
      options.kernel ?? (await loadKernel()),
      options.onProgress,
    );
  } finally {
    await planned.close();
  }
}

async function verifyExpectedHash(
  name: string,
  path: string,
  sha256: string | undefined,
  autov3: string | undefined,
  cacheDir: string | false | undefined,
): Promise<void> {
  if (!sha256 && !autov3) return;
  const hashes = await hashFile(path, { algorithms: ["sha256", "autov3"], cacheDir: cacheDir ?? false });
  const checks: [string, string | undefined, string | undefined][] = [
    ["sha256", sha256, hashes.sha256],
    ["autov3", autov3, hashes.autoV3Full],
  ];
  for (const [kind, expected, actual] of checks) {
    if (!expected || !actual) continue;
    if (!actual.toLowerCase().startsWith(expected.toLowerCase())) {
      throw new GyozaError(
        "hash-mismatch",
        `input "${name}" has ${kind} ${actual.toLowerCase().slice(0, expected.length)}, the recipe expects ${expected}`,
        {
          file: path,
          fix: "this is not the file the recipe was made with: find the right one (gyoza replay --search DIR finds inputs by hash)",
        },
      );
    }
  }
}
