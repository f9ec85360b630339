import { GyozaError } from "../../errors.js";
import { openLibrary } from "../../library/open-library.js";
import { createStudy, findStudy, recordTrial, type StudyStatus, setStudyStatus } from "../study-store.js";
import type { DistributedStudySettings } from "./coordinator.js";
import type { TrialRow } from "./study-log.js";

/**
 * Puts a distributed study's trials in the library (automix_studies / automix_trials), so
 * `automix show`, `automix best` and the web app read distributed studies like in-process ones.
 *
 * The coordinator's StudyLog stays the journal (asks recorded before their jobs exist, tells in
 * arrival order — what the fault tests check); the library is a mirror written after each outcome.
 * A crash between the two loses nothing: every start mirrors every finished trial of the log again,
 * and StudyStore.recordTrial writes a finished trial once, so a trial is never duplicated either.
 * Chosen over making StudyStore the journal because the log also holds the optimizer's event
 * stream (replayOptimizer), which the library has no place for.
 */
/** Where a distributed study is mirrored (plain data: it travels in a coordinator's options). */
export interface LibraryTarget {
  /** The library database file. */
  readonly path: string;
  /** The study file's search space, as YAML (what `automix show` labels coordinates with). */
  readonly spaceYaml?: string;
  /** The base recipe, as YAML (default: the settings' recipe as JSON). */
  readonly baseRecipe?: string;
  /**
   * More settings stored with the study (`automix run --redis`: the study file's recipe and space
   * files, so `automix best` can write the best recipe; the log file, so `resume` finds it).
   */
  readonly settings?: Record<string, unknown>;
}

export class LibraryMirror {
  private readonly db;
  private readonly studyId: number;

  constructor(target: LibraryTarget, study: string, settings: DistributedStudySettings) {
    this.db = openLibrary(target.path);
    const existing = findStudy(this.db, study);
    if (existing && existing.settings.distributed !== true) {
      this.db.close();
      throw new GyozaError("usage", `the library's study "${study}" was run in-process, not through Redis`, {
        fix: `resume it with gyoza automix resume ${study}, or give the distributed study another id`,
      });
    }
    this.studyId = (
      existing ??
      createStudy(this.db, {
        name: study,
        spaceYaml: target.spaceYaml ?? "",
        baseRecipe: target.baseRecipe ?? JSON.stringify(settings.recipe ?? null),
        optimizer: settings.optimizer,
        seed: settings.seed,
        settings: {
          ...target.settings,
          distributed: true,
          budget: settings.budget,
          inFlight: settings.inFlight,
          dimensions: settings.dimensions,
          inputs: settings.inputs,
          objective: settings.objective,
        },
      })
    ).id;
    setStudyStatus(this.db, this.studyId, "running");
  }

  /** Mirrors one finished trial (a no-op when the library has it already). */
  record(
    trial: Pick<TrialRow, "number" | "x" | "state" | "score" | "worker" | "error" | "seconds"> & {
      detail?: TrialRow["detail"];
    },
  ): void {
    if (trial.state === "pending") return;
    const detail = trial.detail ?? undefined;
    recordTrial(this.db, this.studyId, {
      number: trial.number,
      x: trial.x,
      state: trial.state,
      score: trial.score,
      worker: trial.worker,
      error: trial.error,
      recipeKey: detail?.recipeKey ?? null,
      autov3: detail?.autov3 ?? null,
      scores: detail?.scores ?? null,
      // the images stay on the worker (not kept): prompt and seed of each, no file
      images: detail?.images ? detail.images.map(({ prompt, seed }) => ({ path: "", prompt, seed })) : null,
      timings: detail?.timings ?? (trial.seconds === null ? null : { total: trial.seconds }),
    });
  }

  status(status: StudyStatus): void {
    setStudyStatus(this.db, this.studyId, status);
  }

  close(): void {
    this.db.close();
  }
}
