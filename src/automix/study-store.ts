import { GyozaError } from "../errors.js";
import type { LibraryDatabase } from "../library/open-library.js";

/**
 * Automix studies in the library database (migration 3): the study as started (space, base
 * recipe, optimizer, seed, settings) and one row per trial. A trial is written once: recording a
 * trial that is already done or failed changes nothing (INSERT … ON CONFLICT DO NOTHING on
 * (study, number)), so a resumed or distributed study can never duplicate one.
 */
export type StudyStatus = "running" | "stopped" | "finished" | "failed";
export type TrialState = "pending" | "done" | "failed";

export interface StudyDefinition {
  readonly name: string;
  readonly spaceYaml: string;
  /** The base recipe as YAML text. */
  readonly baseRecipe: string;
  readonly optimizer: string;
  readonly seed: number;
  /** Everything else the study needs to resume (budget, batch, images, scorers, folders). */
  readonly settings: Record<string, unknown>;
}

export interface StoredStudy extends StudyDefinition {
  readonly id: number;
  readonly status: StudyStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface TrialRecord {
  readonly number: number;
  readonly x: readonly number[];
  readonly state: TrialState;
  readonly recipeKey?: string | null;
  readonly autov3?: string | null;
  /** Image files written for it (paths), with prompt and seed. */
  readonly images?: readonly { path: string; prompt: string; seed: number }[] | null;
  /** Per objective: its raw scores and tally. */
  readonly scores?: Record<string, { scores: number[]; tally: number }> | null;
  /** The combined score the optimizer was told (null for a failed or pending trial). */
  readonly score?: number | null;
  /** Seconds per phase (merge, generate, score, total). */
  readonly timings?: Record<string, number> | null;
  readonly worker?: string | null;
  readonly error?: string | null;
}

export interface StoredTrial extends Required<TrialRecord> {
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

interface StudyRow {
  id: number;
  name: string;
  space_yaml: string;
  base_recipe: string;
  optimizer: string;
  seed: number;
  settings: string;
  status: StudyStatus;
  created_at: string;
  updated_at: string;
}

interface TrialRow {
  number: number;
  x: string;
  recipe_key: string | null;
  autov3: string | null;
  images: string | null;
  scores: string | null;
  score: number | null;
  timings: string | null;
  worker: string | null;
  error: string | null;
  state: TrialState;
  created_at: string;
  finished_at: string | null;
}

const now = (): string => new Date().toISOString();
const json = (value: unknown): string | null =>
  value === undefined || value === null ? null : JSON.stringify(value);

/** Parses a JSON column written by this module; a damaged one is reported, never guessed at. */
function parseColumn<T>(text: string | null, what: string): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new GyozaError("format", `the library's automix record has unreadable ${what}`, { cause });
  }
}

function toStudy(row: StudyRow): StoredStudy {
  return {
    id: row.id,
    name: row.name,
    spaceYaml: row.space_yaml,
    baseRecipe: row.base_recipe,
    optimizer: row.optimizer,
    seed: row.seed,
    settings: parseColumn<Record<string, unknown>>(row.settings, "study settings") ?? {},
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Creates a study; refuses a name that is taken (resume it instead). */
export function createStudy(db: LibraryDatabase, study: StudyDefinition): StoredStudy {
  const at = now();
  try {
    db.prepare(
      `INSERT INTO automix_studies (name, space_yaml, base_recipe, optimizer, seed, settings, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)`,
    ).run(
      study.name,
      study.spaceYaml,
      study.baseRecipe,
      study.optimizer,
      study.seed,
      JSON.stringify(study.settings),
      at,
      at,
    );
  } catch (cause) {
    if ((cause as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE")
      throw new GyozaError("usage", `a study called "${study.name}" already exists`, {
        fix: `continue it with gyoza automix resume ${study.name}, or give the study file another name`,
        cause,
      });
    throw cause;
  }
  return getStudy(db, study.name);
}

export function findStudy(db: LibraryDatabase, name: string): StoredStudy | undefined {
  const row = db.prepare<[string], StudyRow>("SELECT * FROM automix_studies WHERE name = ?").get(name);
  return row ? toStudy(row) : undefined;
}

export function getStudy(db: LibraryDatabase, name: string): StoredStudy {
  const study = findStudy(db, name);
  if (!study) {
    const names = listStudies(db).map((s) => s.name);
    throw new GyozaError("unknown-id", `there is no automix study called "${name}" in this library`, {
      fix:
        names.length > 0
          ? `studies here: ${names.join(", ")}`
          : "start one with gyoza automix run STUDY.yaml",
    });
  }
  return study;
}

export function listStudies(db: LibraryDatabase): StoredStudy[] {
  return db.prepare<[], StudyRow>("SELECT * FROM automix_studies ORDER BY id").all().map(toStudy);
}

export function setStudyStatus(db: LibraryDatabase, studyId: number, status: StudyStatus): void {
  db.prepare("UPDATE automix_studies SET status = ?, updated_at = ? WHERE id = ?").run(
    status,
    now(),
    studyId,
  );
}

/**
 * Records a trial's outcome once. A pending row becomes done/failed; a finished row is left as it
 * is. Returns whether this call wrote the outcome (false: it was recorded before).
 */
export function recordTrial(db: LibraryDatabase, studyId: number, trial: TrialRecord): boolean {
  if (trial.x.some((v) => !Number.isFinite(v)))
    throw new GyozaError("usage", `trial ${trial.number} has a non-finite coordinate`);
  const at = now();
  const values = [
    JSON.stringify(trial.x),
    trial.recipeKey ?? null,
    trial.autov3 ?? null,
    json(trial.images),
    json(trial.scores),
    trial.score !== undefined && trial.score !== null && Number.isFinite(trial.score) ? trial.score : null,
    json(trial.timings),
    trial.worker ?? null,
    trial.error ?? null,
    trial.state,
  ] as const;
  const finished = trial.state === "pending" ? null : at;
  return db.transaction(() => {
    const inserted = db
      .prepare(
        `INSERT INTO automix_trials (study_id, number, x, recipe_key, autov3, images, scores, score, timings, worker, error, state, created_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (study_id, number) DO NOTHING`,
      )
      .run(studyId, trial.number, ...values, at, finished);
    if (inserted.changes > 0) return true;
    if (trial.state === "pending") return false;
    const updated = db
      .prepare(
        `UPDATE automix_trials SET x = ?, recipe_key = ?, autov3 = ?, images = ?, scores = ?, score = ?, timings = ?,
           worker = ?, error = ?, state = ?, finished_at = ? WHERE study_id = ? AND number = ? AND state = 'pending'`,
      )
      .run(...values, finished, studyId, trial.number);
    return updated.changes > 0;
  })();
}

export function listTrials(db: LibraryDatabase, studyId: number): StoredTrial[] {
  return db
    .prepare<[number], TrialRow>("SELECT * FROM automix_trials WHERE study_id = ? ORDER BY number")
    .all(studyId)
    .map((row) => ({
      number: row.number,
      x: parseColumn<number[]>(row.x, `trial ${row.number}'s point`) ?? [],
      state: row.state,
      recipeKey: row.recipe_key,
      autov3: row.autov3,
      images: parseColumn(row.images, `trial ${row.number}'s images`),
      scores: parseColumn(row.scores, `trial ${row.number}'s scores`),
      score: row.score,
      timings: parseColumn(row.timings, `trial ${row.number}'s timings`),
      worker: row.worker,
      error: row.error,
      createdAt: row.created_at,
      finishedAt: row.finished_at,
    }));
}
