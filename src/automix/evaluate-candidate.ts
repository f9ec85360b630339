import type { GenerationBackend, GenerationParams } from "../backends/types.js";
import { isGyozaError, throwIfAborted } from "../errors.js";
import type { Recipe } from "../recipe/index.js";
import type { Scorer, ScorerImage } from "./scorers/scorer.js";
import type { TrialRecord } from "./study-store.js";
import { combineObjectives, type Tally, tally } from "./tally.js";

/**
 * One automix candidate evaluated (issue #24): its recipe → the merged candidate (`stage`, which
 * may reuse a merge by recipe key / AutoV3) → prompts × seeds images through a generation backend
 * (image scorers only) → each objective's scorer → tallies → the combined score, with per-phase
 * timings. Kept apart from the optimizer loop so the in-process study (run-study.ts) and a
 * distributed worker evaluate a candidate the same way, and a trial means the same thing whichever
 * ran it.
 */

export interface StudyObjective {
  readonly name: string;
  readonly weight: number;
  readonly tally: Tally;
  readonly scorer: Scorer;
}

/** The images every candidate gets for its image scorers: prompts × seeds with fixed settings. */
export interface StudyImages {
  readonly backend: GenerationBackend;
  readonly prompts: readonly string[];
  readonly seeds: readonly number[];
  readonly params: Omit<GenerationParams, "prompt" | "seed">;
  /** Writes one image for the record and returns its path (default: not kept). */
  readonly write?: (trial: number, image: ScorerImage, png: Buffer) => Promise<string>;
}

/** A candidate merged where scorers (and the backend) can read it. */
export interface StagedModel {
  readonly file: string;
  /** The name the backend lists it by (image scorers only). */
  readonly checkpointName?: string;
  readonly autov3?: string;
  readonly recipeKey?: string;
  /** Called once the trial is scored (e.g. to delete a temp merge). */
  readonly release?: () => Promise<void>;
}

export type StageCandidate = (
  recipe: Recipe,
  trial: number,
  signal: AbortSignal | undefined,
) => Promise<StagedModel>;

export interface EvaluateCandidateOptions {
  /** The trial's number and its point in the search space's unit cube (recorded as is). */
  readonly trial: number;
  readonly x: readonly number[];
  /**
   * The candidate's recipe. A function so that a point the space cannot turn into a recipe
   * becomes a failed trial, like any other evaluation error, instead of stopping the study.
   */
  readonly recipe: () => Recipe;
  readonly objectives: readonly StudyObjective[];
  /** Required when an objective scores images. */
  readonly images?: StudyImages;
  readonly stage: StageCandidate;
  readonly signal?: AbortSignal;
  /** Who evaluated it, for the record (a distributed worker's name; null in-process). */
  readonly worker?: string;
  /** The study's name: with it, scorers are told which trial they score (a manual scorer needs that). */
  readonly study?: string;
}

/** Whether any objective needs generated images. */
export function needsImages(objectives: readonly StudyObjective[]): boolean {
  return objectives.some((o) => o.scorer.kind === "images");
}

/**
 * Evaluates one candidate. Any failure other than an interrupt becomes a failed trial carrying the
 * error's message (the optimizer is told it failed and the study goes on); an interrupt is thrown,
 * so the trial stays unrecorded and a resume evaluates it again. The staged merge is always released.
 */
export async function evaluateCandidate(options: EvaluateCandidateOptions): Promise<TrialRecord> {
  const timings: Record<string, number> = {};
  const clock = performance.now();
  const lap = (name: string, since: number) => {
    timings[name] = Math.round(performance.now() - since) / 1000;
  };
  const withImages = needsImages(options.objectives);
  let staged: StagedModel | undefined;
  let imageRecords: { path: string; prompt: string; seed: number }[] | null = null;
  const scores: Record<string, { scores: number[]; tally: number }> = {};
  const worker = options.worker ?? null;
  try {
    if (withImages && !options.images) throw new Error("an image scorer needs images, and none were planned");
    const recipe = options.recipe();
    let since = performance.now();
    staged = await options.stage(recipe, options.trial, options.signal);
    lap("merge", since);
    let images: ScorerImage[] = [];
    if (withImages) {
      since = performance.now();
      ({ images, records: imageRecords } = await generateImages(
        options.images!,
        staged,
        options.trial,
        options.signal,
      ));
      lap("generate", since);
    }
    since = performance.now();
    const scoreOptions = {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.study !== undefined
        ? {
            trial: {
              study: options.study,
              number: options.trial,
              x: options.x,
              images: imageRecords,
            },
          }
        : {}),
    };
    for (const objective of options.objectives) {
      throwIfAborted(options.signal);
      const raw =
        objective.scorer.kind === "images"
          ? await objective.scorer.score(images, scoreOptions)
          : await objective.scorer.score({ path: staged.file }, scoreOptions);
      scores[objective.name] = { scores: raw, tally: tally(raw, objective.tally) };
    }
    lap("score", since);
    timings.total = Math.round(performance.now() - clock) / 1000;
    const score = combineObjectives(
      options.objectives.map((o) => ({ name: o.name, weight: o.weight, score: scores[o.name]!.tally })),
    );
    return {
      number: options.trial,
      x: options.x,
      state: Number.isFinite(score) ? "done" : "failed",
      recipeKey: staged.recipeKey ?? null,
      autov3: staged.autov3 ?? null,
      images: imageRecords,
      scores,
      score: Number.isFinite(score) ? score : null,
      timings,
      worker,
      error: Number.isFinite(score) ? null : "an objective's tally is not a finite number",
    };
  } catch (error) {
    if (isGyozaError(error) && error.code === "interrupted") throw error;
    if (options.signal?.aborted) throwIfAborted(options.signal);
    timings.total = Math.round(performance.now() - clock) / 1000;
    return {
      number: options.trial,
      x: options.x,
      state: "failed",
      recipeKey: staged?.recipeKey ?? null,
      autov3: staged?.autov3 ?? null,
      images: imageRecords,
      scores,
      score: null,
      timings,
      worker,
      error: (error as Error).message,
    };
  } finally {
    await staged?.release?.();
  }
}

async function generateImages(
  plan: StudyImages,
  staged: StagedModel,
  trial: number,
  signal: AbortSignal | undefined,
): Promise<{ images: ScorerImage[]; records: { path: string; prompt: string; seed: number }[] }> {
  const checkpoint = staged.checkpointName ?? plan.backend.checkpointName(staged.file.split(/[\\/]/).at(-1)!);
  const images: ScorerImage[] = [];
  const records: { path: string; prompt: string; seed: number }[] = [];
  for (const prompt of plan.prompts) {
    for (const seed of plan.seeds) {
      throwIfAborted(signal);
      const generated = await plan.backend.generate(
        { ...plan.params, prompt, seed, checkpoint },
        signal ? { signal } : {},
      );
      const image = { png: generated.png, prompt, seed };
      images.push(image);
      if (plan.write) records.push({ path: await plan.write(trial, image, generated.png), prompt, seed });
    }
  }
  return { images, records };
}
