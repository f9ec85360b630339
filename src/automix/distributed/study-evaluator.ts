import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import type { GenerationBackend } from "../../backends/types.js";
import { GyozaError } from "../../errors.js";
import { type Recipe, recipeFromData } from "../../recipe/index.js";
import { evaluateCandidate, needsImages } from "../evaluate-candidate.js";
import { mergeIntoFolder } from "../run-study.js";
import {
  type BuiltObjectives,
  buildObjectives,
  imageParams,
  imageStage,
  type ObjectiveSettings,
} from "../study-objectives.js";
import { type Evaluator, standInEvaluator } from "./evaluate.js";
import type { EvaluationJobData, StudyObjectiveSpec } from "./types.js";

/**
 * What `gyoza worker` runs for a job (issue #24, "Scale"): a `study` job's recipe merged from the
 * worker's own verified copies of the inputs, its images rendered through the worker's backend,
 * scored by the study's scorers rebuilt from the job — evaluateCandidate, as the in-process loop
 * does — and a `weight-space` job scored straight from its point (the stand-in path of the
 * throughput bench and the fault tests).
 */
export interface StudyEvaluatorOptions {
  /** The backend image jobs render through (gyoza.yaml's, or the in-process stand-in). */
  readonly backend: GenerationBackend;
  /** A folder of the worker's own: weight-only candidates are merged under it (and deleted once scored). */
  readonly work: string;
  /** The hash cache (default: the user's), or false. */
  readonly hashCacheDir?: string | false;
  /** Time a weight-space job takes (the stand-in's stand-in for generation). */
  readonly weightSpaceDelayMs?: number;
}

export interface StudyEvaluator {
  readonly evaluate: Evaluator;
  /** Stops what the current study's scorers started, removes the worker's merge folder. */
  close(): Promise<void>;
}

export function studyEvaluator(options: StudyEvaluatorOptions): StudyEvaluator {
  const weightSpace = standInEvaluator(options.weightSpaceDelayMs ?? 0);
  // one study's scorers at a time: a worker usually serves one study, and an HTTP stand-in or an
  // ONNX model is not rebuilt per trial
  let cached: { key: string; built: BuiltObjectives } | undefined;
  let mergeFolder: Promise<string> | undefined;

  const objectivesFor = async (objective: StudyObjectiveSpec, inputs: ReadonlyMap<string, string>) => {
    const settings = objective.scorers.map((scorer) => scorerSettings(scorer, inputs));
    const key = JSON.stringify(settings);
    if (cached?.key === key) return cached.built;
    await cached?.built.close();
    cached = undefined;
    const built = await buildObjectives(settings);
    cached = { key, built };
    return built;
  };

  /** The worker's own folder for weight-only merges, made on first use. */
  const merges = (): Promise<string> => {
    mergeFolder ??= mkdir(options.work, { recursive: true }).then(() =>
      mkdtemp(join(options.work, "merges-")),
    );
    return mergeFolder;
  };

  const evaluate: Evaluator = async (job, signal, inputs) => {
    if (job.objective.kind === "weight-space") return weightSpace(job, signal, inputs);
    const objective = job.objective;
    const recipe = jobRecipe(job, inputs);
    const { objectives } = await objectivesFor(objective, inputs);
    const images = needsImages(objectives) ? objective.images : undefined;
    const { backend } = options;
    const stage = images
      ? await imageStage(backend, options.work, options.hashCacheDir)
      : mergeIntoFolder(await merges(), options.work, async (recipe, mergeOptions) => {
          const { runRecipe } = await import("../../engine/run-recipe.js");
          return runRecipe(recipe, {
            ...mergeOptions,
            ...(options.hashCacheDir !== undefined ? { hashCacheDir: options.hashCacheDir } : {}),
          });
        });
    const trial = await evaluateCandidate({
      trial: job.trial,
      x: job.x,
      recipe: () => recipe,
      objectives,
      ...(images
        ? {
            images: {
              backend,
              prompts: images.prompts,
              seeds: images.seeds,
              params: imageParams(images),
            },
          }
        : {}),
      stage,
      signal,
    });
    if (trial.state !== "done" || trial.score === null || trial.score === undefined)
      throw new Error(trial.error ?? "the evaluation gave no score");
    return {
      score: trial.score,
      ...(trial.scores ? { scores: trial.scores } : {}),
      images: images
        ? images.prompts.flatMap((prompt) => images.seeds.map((seed) => ({ prompt, seed })))
        : [],
      ...(trial.timings ? { timings: trial.timings } : {}),
      ...(trial.autov3 ? { autov3: trial.autov3 } : {}),
      ...(trial.recipeKey ? { recipeKey: trial.recipeKey } : {}),
    };
  };

  return {
    evaluate,
    async close() {
      await cached?.built.close();
      cached = undefined;
      const folder = await mergeFolder?.catch(() => undefined);
      if (folder) await rm(folder, { recursive: true, force: true });
    },
  };
}

/**
 * The job's recipe with every file it reads pointed at the worker's verified copy: a recipe path
 * must be the plain name of one of the job's inputs (never a path of the worker's disk).
 */
export function jobRecipe(job: EvaluationJobData, inputs: ReadonlyMap<string, string>): Recipe {
  const recipe = recipeFromData(structuredClone(job.recipe), {
    sourceName: `the job's recipe (trial ${job.trial})`,
  });
  const local = (path: string, what: string): string => {
    const file = inputs.get(path);
    if (file === undefined)
      throw new GyozaError(
        "usage",
        `the job's recipe reads ${what} "${path}", which is not among the job's inputs`,
        {
          fix: "the coordinator lists every file the recipe reads as an input (gyoza automix run --redis does)",
        },
      );
    return file;
  };
  for (const [name, input] of Object.entries(recipe.inputs))
    input.path = local(input.path, `input ${name} from`);
  if (recipe.output.vae.file !== undefined) recipe.output.vae.file = local(recipe.output.vae.file, "the VAE");
  return recipe;
}

/** A job's scorer spec as the scorers want it: its files at the worker's verified copies. */
function scorerSettings(
  scorer: StudyObjectiveSpec["scorers"][number],
  inputs: ReadonlyMap<string, string>,
): ObjectiveSettings {
  const file = (name: string) => {
    const path = inputs.get(name);
    if (path === undefined)
      throw new GyozaError("usage", `scorer ${scorer.name}'s file "${name}" is not among the job's inputs`);
    return path;
  };
  if (scorer.type === "weights") {
    const { target_sha256: _, ...rest } = scorer;
    return { ...rest, target: file(scorer.target) };
  }
  if (scorer.type === "onnx") {
    const { model_sha256: _, ...rest } = scorer;
    return { ...rest, model: file(scorer.model) };
  }
  return scorer;
}
