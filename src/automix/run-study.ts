import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { GenerationBackend, GenerationParams } from "../backends/types.js";
import { GyozaError, isGyozaError, throwIfAborted } from "../errors.js";
import type { LibraryDatabase } from "../library/open-library.js";
import type { Recipe } from "../recipe/index.js";
import { createOptimizer } from "./optimizers/create-optimizer.js";
import type { Candidate, OptimizerSpace, TrialResult } from "./optimizers/optimizer.js";
import type { Scorer, ScorerImage } from "./scorers/scorer.js";
import {
  listTrials,
  recordTrial,
  type StoredStudy,
  type StoredTrial,
  setStudyStatus,
  type TrialRecord,
} from "./study-store.js";
import { combineObjectives, type Tally, tally } from "./tally.js";

/**
 * The in-process automix loop (issue #24): optimizer.ask → per candidate: its recipe
 * (space.toRecipe) → the merged candidate (`stage`) → images for image scorers (prompts × seeds
 * through the backend) → scorers → tallies → the combined score → the trial recorded once in the
 * library → optimizer.tell.
 *
 * Resume is the same call: the optimizer is re-created with the study's seed and every ask is
 * replayed; a candidate whose trial is recorded is told its recorded score instead of being
 * evaluated again (its point must match the record, else the space, seed or optimizer changed).
 * Candidates are asked `batch` at a time and told together in id order, in a fresh run and in a
 * resumed one alike, so the optimizer's state — and every later candidate — is the same as in an
 * uninterrupted run.
 */

/** What the loop needs of a search space (src/automix/search-space.ts's SearchSpace fits). */
export interface StudySpace extends OptimizerSpace {
  toRecipe(x: readonly number[], base: Recipe): Recipe;
  describe?(x: readonly number[]): string;
}

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

export interface TrialProgress {
  readonly trial: StoredTrial | TrialRecord;
  /** Trials recorded so far (this run's and earlier runs'). */
  readonly done: number;
  readonly budget: number;
  /** Seconds left at this run's pace so far, once one trial of this run has finished. */
  readonly etaSeconds: number | undefined;
  readonly best: number | undefined;
}

export interface RunStudyOptions {
  readonly db: LibraryDatabase;
  readonly study: StoredStudy;
  readonly space: StudySpace;
  readonly base: Recipe;
  readonly objectives: readonly StudyObjective[];
  readonly images?: StudyImages;
  readonly budget: number;
  /** Candidates asked at a time (default 1). */
  readonly batch?: number;
  readonly stage: (recipe: Recipe, trial: number, signal: AbortSignal | undefined) => Promise<StagedModel>;
  readonly signal?: AbortSignal;
  readonly worker?: string;
  readonly onTrial?: (progress: TrialProgress) => void;
}

export interface RunStudyResult {
  readonly trials: StoredTrial[];
  /** Trials evaluated by this call (the rest were recorded before). */
  readonly evaluated: number;
  readonly status: "finished" | "stopped";
}

const SAME_POINT = 1e-12;

export async function runStudy(options: RunStudyOptions): Promise<RunStudyResult> {
  const { db, study, space, budget } = options;
  const batch = Math.max(1, Math.trunc(options.batch ?? 1));
  if (!Number.isInteger(budget) || budget < 1)
    throw new GyozaError("usage", `a study's budget must be a whole number ≥ 1, not ${budget}`);
  if (options.objectives.length === 0) throw new GyozaError("usage", "a study needs at least one scorer");
  const needsImages = options.objectives.some((o) => o.scorer.kind === "images");
  if (needsImages && !options.images)
    throw new GyozaError(
      "usage",
      "an image scorer needs images: give the study a backend, prompts and seeds",
    );

  const optimizer = createOptimizer(study.optimizer, space, { seed: study.seed, budget, batch });
  const recorded = new Map(
    listTrials(db, study.id)
      .filter((trial) => trial.state !== "pending")
      .map((trial) => [trial.number, trial]),
  );
  let done = recorded.size;
  let asked = 0;
  let evaluated = 0;
  let best = bestScore([...recorded.values()]);
  const started = performance.now();
  setStudyStatus(db, study.id, "running");
  try {
    while (asked < budget && !optimizer.done?.()) {
      const candidates = optimizer.ask(Math.min(batch, budget - asked));
      if (candidates.length === 0) break;
      asked += candidates.length;
      const results: TrialResult[] = [];
      for (const candidate of candidates) {
        const previous = recorded.get(candidate.id);
        if (previous) {
          checkSamePoint(candidate, previous);
          results.push({ candidate, score: previous.score ?? Number.NaN });
          continue;
        }
        throwIfAborted(options.signal);
        const trial = await evaluate(options, candidate, needsImages);
        recordTrial(db, study.id, trial);
        evaluated++;
        done++;
        const score = trial.score ?? Number.NaN;
        if (Number.isFinite(score) && (best === undefined || score > best)) best = score;
        results.push({ candidate, score });
        const perTrial = (performance.now() - started) / 1000 / evaluated;
        options.onTrial?.({ trial, done, budget, etaSeconds: perTrial * Math.max(0, budget - done), best });
      }
      optimizer.tell(results);
    }
  } catch (error) {
    setStudyStatus(db, study.id, isGyozaError(error) && error.code === "interrupted" ? "stopped" : "failed");
    throw error;
  }
  setStudyStatus(db, study.id, "finished");
  return { trials: listTrials(db, study.id), evaluated, status: "finished" };
}

function checkSamePoint(candidate: Candidate, trial: StoredTrial): void {
  const same =
    trial.x.length === candidate.x.length &&
    trial.x.every((v, i) => Math.abs(v - candidate.x[i]!) <= SAME_POINT);
  if (!same)
    throw new GyozaError(
      "usage",
      `trial ${trial.number} was recorded at another point than the optimizer proposes now`,
      {
        fix: "resume with the search space, optimizer and seed the study was started with (gyoza automix resume NAME uses the stored ones)",
      },
    );
}

function bestScore(trials: readonly { score?: number | null }[]): number | undefined {
  let best: number | undefined;
  for (const { score } of trials)
    if (
      score !== null &&
      score !== undefined &&
      Number.isFinite(score) &&
      (best === undefined || score > best)
    )
      best = score;
  return best;
}

/** Evaluates one candidate; a failure (other than an interrupt) becomes a failed trial. */
async function evaluate(
  options: RunStudyOptions,
  candidate: Candidate,
  needsImages: boolean,
): Promise<TrialRecord> {
  const timings: Record<string, number> = {};
  const clock = performance.now();
  const lap = (name: string, since: number) => {
    timings[name] = Math.round(performance.now() - since) / 1000;
  };
  let staged: StagedModel | undefined;
  let imageRecords: { path: string; prompt: string; seed: number }[] | null = null;
  const scores: Record<string, { scores: number[]; tally: number }> = {};
  try {
    const recipe = options.space.toRecipe(candidate.x, options.base);
    let since = performance.now();
    staged = await options.stage(recipe, candidate.id, options.signal);
    lap("merge", since);
    let images: ScorerImage[] = [];
    if (needsImages) {
      since = performance.now();
      ({ images, records: imageRecords } = await generateImages(
        options.images!,
        staged,
        candidate.id,
        options.signal,
      ));
      lap("generate", since);
    }
    since = performance.now();
    for (const objective of options.objectives) {
      throwIfAborted(options.signal);
      const raw =
        objective.scorer.kind === "images"
          ? await objective.scorer.score(images, { signal: options.signal })
          : await objective.scorer.score({ path: staged.file }, { signal: options.signal });
      scores[objective.name] = { scores: raw, tally: tally(raw, objective.tally) };
    }
    lap("score", since);
    timings.total = Math.round(performance.now() - clock) / 1000;
    const score = combineObjectives(
      options.objectives.map((o) => ({ name: o.name, weight: o.weight, score: scores[o.name]!.tally })),
    );
    return {
      number: candidate.id,
      x: candidate.x,
      state: Number.isFinite(score) ? "done" : "failed",
      recipeKey: staged.recipeKey ?? null,
      autov3: staged.autov3 ?? null,
      images: imageRecords,
      scores,
      score: Number.isFinite(score) ? score : null,
      timings,
      worker: options.worker ?? null,
      error: Number.isFinite(score) ? null : "an objective's tally is not a finite number",
    };
  } catch (error) {
    if (isGyozaError(error) && error.code === "interrupted") throw error;
    if (options.signal?.aborted) throwIfAborted(options.signal);
    timings.total = Math.round(performance.now() - clock) / 1000;
    return {
      number: candidate.id,
      x: candidate.x,
      state: "failed",
      recipeKey: staged?.recipeKey ?? null,
      autov3: staged?.autov3 ?? null,
      images: imageRecords,
      scores,
      score: null,
      timings,
      worker: options.worker ?? null,
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

/** Default image file name of a trial's image: trial-0003-p1-s42.png under `folder`. */
export function trialImagePath(folder: string, trial: number, promptIndex: number, seed: number): string {
  return join(folder, `trial-${String(trial).padStart(4, "0")}-p${promptIndex}-s${seed}.png`);
}

/**
 * A `stage` for weight-space studies: merges the candidate into `folder` (a temp file renamed into
 * place, as every gyoza merge) and deletes it once scored. Relative input paths resolve from `baseDir`.
 */
export function mergeIntoFolder(
  folder: string,
  baseDir: string,
  merge: (
    recipe: Recipe,
    options: { baseDir: string; signal?: AbortSignal },
  ) => Promise<{ output: string; dataSha256?: string }>,
): RunStudyOptions["stage"] {
  return async (recipe, trial, signal) => {
    const path = join(folder, `candidate-${String(trial).padStart(4, "0")}.safetensors`);
    const withOutput: Recipe = { ...recipe, output: { ...recipe.output, path, metadata: "none" } };
    const result = await merge(withOutput, { baseDir, ...(signal ? { signal } : {}) });
    return {
      file: result.output,
      ...(result.dataSha256 ? { autov3: result.dataSha256 } : {}),
      release: () => rm(result.output, { force: true }),
    };
  };
}
