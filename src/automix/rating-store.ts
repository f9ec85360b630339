import { GyozaError } from "../errors.js";
import type { LibraryDatabase } from "../library/open-library.js";
import { recordTrial } from "./study-store.js";

/**
 * Ratings a person gives in the web app (issue #24, scorer 4; migration 5): a `type: manual` scorer
 * asks for one per trial and waits; `gyoza serve`, another process on the same library file (SQLite
 * WAL), writes it. The request and the rating are rows in the library rather than messages between
 * the processes, so either can stop and start again: a study resumed after Ctrl-C finds the request
 * it left, or the rating that arrived meanwhile.
 */

export interface RatingImage {
  readonly path: string;
  readonly prompt: string;
  readonly seed: number;
}

export interface StoredRating {
  readonly trial: number;
  /** The images to rate, in the order the scores follow. */
  readonly images: readonly RatingImage[];
  readonly requestedAt: string;
  /** One score per image once rated; null while the trial awaits its rating. */
  readonly scores: readonly number[] | null;
  readonly ratedAt: string | null;
}

interface RatingRow {
  trial: number;
  images: string;
  requested_at: string;
  scores: string | null;
  rated_at: string | null;
}

function toRating(row: RatingRow): StoredRating {
  const parse = <T>(text: string, what: string): T => {
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new GyozaError("format", `the library's rating of trial ${row.trial} has unreadable ${what}`, {
        cause,
      });
    }
  };
  return {
    trial: row.trial,
    images: parse<RatingImage[]>(row.images, "images"),
    requestedAt: row.requested_at,
    scores: row.scores === null ? null : parse<number[]>(row.scores, "scores"),
    ratedAt: row.rated_at,
  };
}

/**
 * Asks for a rating of a trial: records the trial as `pending` with its images (so the study's
 * views show it and its images can be served) and the request beside it, in one transaction. A
 * request made before (a resumed study) is kept as it is, rated or not. Returns the stored request.
 */
export function requestRating(
  db: LibraryDatabase,
  studyId: number,
  trial: { number: number; x: readonly number[]; images: readonly RatingImage[] },
): StoredRating {
  if (trial.images.length === 0) throw new GyozaError("usage", `trial ${trial.number} has no images to rate`);
  return db.transaction(() => {
    recordTrial(db, studyId, { number: trial.number, x: trial.x, state: "pending", images: trial.images });
    db.prepare(
      `INSERT INTO automix_ratings (study_id, trial, images, requested_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (study_id, trial) DO NOTHING`,
    ).run(studyId, trial.number, JSON.stringify(trial.images), new Date().toISOString());
    return findRating(db, studyId, trial.number)!;
  })();
}

export function findRating(db: LibraryDatabase, studyId: number, trial: number): StoredRating | undefined {
  const row = db
    .prepare<[number, number], RatingRow>(
      "SELECT trial, images, requested_at, scores, rated_at FROM automix_ratings WHERE study_id = ? AND trial = ?",
    )
    .get(studyId, trial);
  return row ? toRating(row) : undefined;
}

/** The study's trials that wait for a person's rating, oldest first. */
export function listAwaitingRatings(db: LibraryDatabase, studyId: number): StoredRating[] {
  return db
    .prepare<[number], RatingRow>(
      `SELECT trial, images, requested_at, scores, rated_at FROM automix_ratings
       WHERE study_id = ? AND scores IS NULL ORDER BY trial`,
    )
    .all(studyId)
    .map(toRating);
}

/** How many trials of each study wait for a rating (study id → count; studies with none are absent). */
export function countAwaitingRatings(db: LibraryDatabase): Map<number, number> {
  const rows = db
    .prepare<[], { study_id: number; n: number }>(
      "SELECT study_id, COUNT(*) AS n FROM automix_ratings WHERE scores IS NULL GROUP BY study_id",
    )
    .all();
  return new Map(rows.map((row) => [row.study_id, row.n]));
}

/**
 * Gives a trial its rating: one finite score per image of the request. Only a trial that awaits a
 * rating takes one (the UPDATE is guarded by `scores IS NULL`, so of two people rating at once the
 * first wins and the second is told). Errors are GyozaErrors whose message says what was wrong.
 */
export function giveRating(
  db: LibraryDatabase,
  studyId: number,
  trial: number,
  scores: readonly number[],
): StoredRating {
  return db.transaction(() => {
    const request = findRating(db, studyId, trial);
    if (!request) throw new GyozaError("unknown-id", `trial ${trial} was never asked for a rating`);
    if (request.scores !== null)
      throw new GyozaError("usage", `trial ${trial} was rated already (at ${request.ratedAt})`);
    checkScores(scores, request.images.length, trial);
    db.prepare(
      "UPDATE automix_ratings SET scores = ?, rated_at = ? WHERE study_id = ? AND trial = ? AND scores IS NULL",
    ).run(JSON.stringify(scores), new Date().toISOString(), studyId, trial);
    return findRating(db, studyId, trial)!;
  })();
}

/** One finite number per image, or a GyozaError saying which rule the scores broke. */
export function checkScores(scores: readonly unknown[], images: number, trial: number): void {
  if (scores.length !== images)
    throw new GyozaError(
      "usage",
      `trial ${trial} has ${images} image${images === 1 ? "" : "s"}: give ${images} score${images === 1 ? "" : "s"}, not ${scores.length}`,
    );
  const bad = scores.findIndex((score) => typeof score !== "number" || !Number.isFinite(score));
  if (bad >= 0)
    throw new GyozaError("usage", `scores[${bad}] is not a finite number (${String(scores[bad])})`);
}
