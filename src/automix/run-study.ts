import { rm } from "node:fs/promises";
import { join } from "node:path";
import { GyozaError, isGyozaError, throwIfAborted } from "../errors.js";
import type { LibraryDatabase } from "../library/open-library.js";
import type { Recipe } from "../recipe/index.js";
import {
  evaluateCandidate,
  needsImages,
  type StageCandidate,
  type StudyImages,
  type StudyObjective,
} from "./evaluate-candidate.js";
import { createOptimizer } from "./optimizers/create-optimizer.js";
import type { Candidate, OptimizerSpace, TrialResult } from "./optimizers/optimizer.js";
import {
  listTrials,
  recordTrial,
  type StoredStudy,
  type StoredTrial,
  setStudyStatus,
  type TrialRecord,
} from "./study-store.js";

/**
 * The in-process automix loop (issue #24): optimizer.ask → per candidate, evaluateCandidate
 * (evaluate-candidate.ts, its own module so a distributed worker can evaluate the same way): its
 * recipe (space.toRecipe) → the merged candidate (`stage`) → images for image scorers (prompts ×
 * seeds through the backend) → scorers → tallies → the combined score → then the trial recorded
 * once in the library → optimizer.tell.
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

export type { StagedModel, StudyImages, StudyObjective } from "./evaluate-candidate.js";

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
  readonly stage: StageCandidate;
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
  if (needsImages(options.objectives) && !options.images)
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
        const trial = await evaluateCandidate({
          trial: candidate.id,
          x: candidate.x,
          recipe: () => space.toRecipe(candidate.x, options.base),
          objectives: options.objectives,
          ...(options.images ? { images: options.images } : {}),
          stage: options.stage,
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.worker !== undefined ? { worker: options.worker } : {}),
          study: study.name,
        });
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
