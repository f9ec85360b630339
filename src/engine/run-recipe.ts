import { isAbsolute, resolve } from "node:path";
import { GyozaError, throwIfAborted } from "../errors.js";
import { hashFile } from "../hash/index.js";
import { parsePrecision } from "../io/dtype.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { Checkpoint } from "../io/tensor.js";
import { loadKernel } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { builtinMethods, findMethod, type MethodRegistry } from "../merge/index.js";
import type { ProgressListener } from "../progress.js";
import type { Recipe } from "../recipe/index.js";
import { finalSteps, resolveStepWeights, rootInput, topologicalSteps } from "../recipe/index.js";
import { checkCompatible, executeMerge, type MergeResult, type VaePolicy } from "./execute-merge.js";
import type { GraphStep } from "./merge-graph.js";

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
  /** Output settings the caller changed on the loaded recipe (`{"output.dtype": "fp32"}`), recorded in the provenance. */
  overrides?: Record<string, unknown>;
}

/** The output step: named, or the only step no other step uses. */
export function outputStepOf(recipe: Recipe): string {
  if (recipe.output.step) return recipe.output.step;
  const finals = finalSteps(recipe);
  if (finals.length !== 1) {
    throw new GyozaError(
      "recipe",
      `cannot tell which step is the output (candidates: ${finals.join(", ")})`,
      {
        path: "output.step",
        fix: "name it with output.step",
      },
    );
  }
  return finals[0]!;
}

/**
 * Evaluates a recipe: opens its inputs, checks expected hashes and architectures before anything
 * is allocated, resolves every step's weights for the detected family and streams the merge into a
 * temp file renamed over `output.path` only when complete (see `RunRecipeOptions.signal` to stop it).
 */
export async function runRecipe(recipe: Recipe, options: RunRecipeOptions = {}): Promise<MergeResult> {
  const baseDir = options.baseDir ?? process.cwd();
  const at = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const methods = options.methods ?? builtinMethods;
  throwIfAborted(options.signal);
  const opened: Checkpoint[] = [];
  try {
    const inputs = [];
    const inputPaths: Record<string, string> = {};
    for (const [name, input] of Object.entries(recipe.inputs)) {
      const path = at(input.path);
      inputPaths[name] = path;
      await verifyExpectedHash(name, path, input.sha256, input.autov3, options.hashCacheDir);
      const checkpoint = await openCheckpoint(path);
      opened.push(checkpoint);
      inputs.push({ name, checkpoint });
    }
    const detection = checkCompatible(inputs);
    const family = detection.family as "sd1" | "sdxl";
    const vaeSlot = recipe.output.vae.policy === "merge" ? recipe.output.vae.slot : undefined;
    const steps: GraphStep[] = topologicalSteps(recipe).map((name) => {
      const step = recipe.steps[name]!;
      const method = findMethod(methods, step.method, `steps.${name}.method`);
      return {
        name,
        method,
        inputs: method.inputs.map((input) => step.inputs[input.name]!),
        paramsForKey: resolveStepWeights(step, family, {
          methods,
          path: `steps.${name}`,
          ...(vaeSlot ? { vaeSlot } : {}),
        }),
        arithmetic: step.arithmetic,
        seed: step.seed ?? 0,
      };
    });
    const output = outputStepOf(recipe);
    let vae: VaePolicy;
    switch (recipe.output.vae.policy) {
      case "bake": {
        const file = recipe.output.vae.file;
        if (!file)
          throw new GyozaError("recipe", "VAE policy bake needs a file", { path: "output.vae.file" });
        const checkpoint = await openCheckpoint(at(file));
        opened.push(checkpoint);
        vae = { policy: "bake", checkpoint };
        break;
      }
      case "take-b": {
        const input = rootInput(recipe, output, "b");
        if (!input)
          throw new GyozaError("recipe", `step "${output}" has no input b to take the VAE from`, {
            path: "output.vae.policy",
          });
        vae = { policy: "take", input };
        break;
      }
      case "merge":
        vae = { policy: "merge" };
        break;
      default:
        vae = { policy: "keep-a" };
    }
    const outputStep = recipe.steps[output]!;
    return await executeMerge(
      {
        graph: { inputs, steps, output },
        inputPaths,
        output: {
          path: at(recipe.output.path),
          dtype: parsePrecision(recipe.output.dtype),
          prune: recipe.output.prune,
          vae,
        },
        provenance: {
          level: recipe.output.metadata,
          ...(recipe.output.title ? { title: recipe.output.title } : {}),
          ...(recipe.output.description ? { description: recipe.output.description } : {}),
          ...(recipe.output.author ? { author: recipe.output.author } : {}),
          ...(recipe.output.clip_skip !== undefined ? { clipSkip: recipe.output.clip_skip } : {}),
          recipe: JSON.parse(JSON.stringify(recipe)) as Record<string, unknown>,
          ...(options.overrides ? { overrides: options.overrides } : {}),
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
      },
      options.kernel ?? (await loadKernel()),
      options.onProgress,
    );
  } finally {
    await Promise.all(opened.map((checkpoint) => checkpoint.close()));
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
