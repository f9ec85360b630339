import Database from "better-sqlite3";
import { GyozaError } from "../../errors.js";
import type { Candidate, OptimizerEvent } from "../optimizers/optimizer.js";

/**
 * The coordinator's durable record of a distributed study: its settings, every ask and tell in
 * order (for replayOptimizer on resume) and one row per trial, recorded once: a result for a trial
 * that is already finished changes nothing. A small SQLite file of its own (WAL, every write a
 * transaction) until the library database's trials table (issue #24, study storage) takes over.
 */
export interface TrialRow {
  readonly number: number;
  readonly x: number[];
  readonly state: "pending" | "done" | "failed";
  readonly score: number | null;
  readonly worker: string | null;
  readonly error: string | null;
  readonly seconds: number | null;
  /** What a `study` job measured besides the score (per-objective tallies, images, timings). */
  readonly detail: TrialDetail | null;
}

/** A trial's measurements beyond its score, as the worker reported them (EvaluationOutcome). */
export interface TrialDetail {
  readonly scores?: Record<string, { scores: number[]; tally: number }>;
  readonly images?: readonly { prompt: string; seed: number }[];
  readonly timings?: Record<string, number>;
  readonly autov3?: string;
  readonly recipeKey?: string;
}

export interface TrialOutcome {
  /** NaN/-Infinity for a failed trial (it ranks below every score). */
  readonly score: number;
  readonly worker?: string;
  readonly error?: string;
  readonly seconds?: number;
  readonly detail?: TrialDetail;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS studies (id TEXT PRIMARY KEY, settings TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS events (
    study TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (study, seq));
  CREATE TABLE IF NOT EXISTS trials (
    study TEXT NOT NULL, number INTEGER NOT NULL, x TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    score REAL, worker TEXT, error TEXT, seconds REAL, detail TEXT,
    PRIMARY KEY (study, number));
`;

export class StudyLog {
  private readonly db: Database.Database;

  constructor(readonly path: string) {
    try {
      this.db = new Database(path);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = FULL");
      this.db.exec(SCHEMA);
      // logs written before trial details existed get the column (NULL: nothing beyond the score)
      const columns = this.db.prepare("PRAGMA table_info(trials)").all() as { name: string }[];
      if (!columns.some((column) => column.name === "detail"))
        this.db.exec("ALTER TABLE trials ADD COLUMN detail TEXT");
    } catch (cause) {
      throw new GyozaError("io", `cannot open the study log: ${(cause as Error).message}`, {
        file: path,
        cause,
      });
    }
  }

  close(): void {
    this.db.close();
  }

  /** The study's settings as first stored, or undefined for a new study. */
  settings(study: string): unknown {
    const row = this.db.prepare("SELECT settings FROM studies WHERE id = ?").get(study) as
      | { settings: string }
      | undefined;
    return row === undefined ? undefined : JSON.parse(row.settings);
  }

  create(study: string, settings: unknown): void {
    this.db.prepare("INSERT INTO studies (id, settings) VALUES (?, ?)").run(study, JSON.stringify(settings));
  }

  events(study: string): OptimizerEvent[] {
    const rows = this.db.prepare("SELECT event FROM events WHERE study = ? ORDER BY seq").all(study) as {
      event: string;
    }[];
    // JSON has no -Infinity: a failed trial's tell is stored with score null
    return rows.map((row) => {
      const event = JSON.parse(row.event) as OptimizerEvent;
      if (event.kind === "ask") return event;
      return {
        kind: "tell",
        results: event.results.map(({ id, score }) => ({ id, score: score ?? Number.NEGATIVE_INFINITY })),
      };
    });
  }

  /** Records an ask and its candidates as pending trials, in one transaction. */
  recordAsk(study: string, count: number, candidates: readonly Candidate[]): void {
    const insert = this.db.prepare(
      "INSERT INTO trials (study, number, x, state) VALUES (?, ?, ?, 'pending')",
    );
    this.db.transaction(() => {
      this.appendEvent(study, { kind: "ask", count });
      for (const candidate of candidates) insert.run(study, candidate.id, JSON.stringify(candidate.x));
    })();
  }

  /**
   * Records a trial's outcome and its tell event, once: false (and nothing written) when the trial
   * is not pending (already recorded, or never asked).
   */
  recordOutcome(study: string, trial: number, outcome: TrialOutcome): boolean {
    const failed = !Number.isFinite(outcome.score);
    return this.db.transaction(() => {
      const changed = this.db
        .prepare(
          `UPDATE trials SET state = ?, score = ?, worker = ?, error = ?, seconds = ?, detail = ?
           WHERE study = ? AND number = ? AND state = 'pending'`,
        )
        .run(
          failed ? "failed" : "done",
          failed ? null : outcome.score,
          outcome.worker ?? null,
          outcome.error ?? null,
          outcome.seconds ?? null,
          outcome.detail === undefined ? null : JSON.stringify(outcome.detail),
          study,
          trial,
        ).changes;
      if (changed !== 1) return false;
      this.appendEvent(study, {
        kind: "tell",
        results: [{ id: trial, score: failed ? null : outcome.score }],
      });
      return true;
    })();
  }

  trials(study: string): TrialRow[] {
    const rows = this.db.prepare("SELECT * FROM trials WHERE study = ? ORDER BY number").all(study) as (Omit<
      TrialRow,
      "x" | "detail"
    > & { x: string; detail: string | null })[];
    return rows.map((row) => ({
      number: row.number,
      x: JSON.parse(row.x) as number[],
      state: row.state,
      score: row.score,
      worker: row.worker,
      error: row.error,
      seconds: row.seconds,
      detail: row.detail === null ? null : (JSON.parse(row.detail) as TrialDetail),
    }));
  }

  private appendEvent(study: string, event: unknown): void {
    const next = this.db
      .prepare("SELECT COALESCE(MAX(seq), -1) + 1 AS seq FROM events WHERE study = ?")
      .get(study) as {
      seq: number;
    };
    this.db
      .prepare("INSERT INTO events (study, seq, event) VALUES (?, ?, ?)")
      .run(study, next.seq, JSON.stringify(event));
  }
}
