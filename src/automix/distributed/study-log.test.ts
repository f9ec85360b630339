import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";
import { StudyLog } from "./study-log.js";

let dir = "";
useTempDirWithHashCache("gyoza-study-log-", (path) => (dir = path));

describe("the coordinator's study log", () => {
  it("keeps a trial's details (tallies, images, timings) with its outcome, once", () => {
    const log = new StudyLog(join(dir, "details.sqlite"));
    try {
      log.create("s", {});
      log.recordAsk("s", 1, [{ id: 0, x: [0.5] }]);
      const detail = {
        scores: { like: { scores: [-0.1], tally: -0.1 } },
        images: [{ prompt: "p", seed: 1 }],
        timings: { merge: 0.2, total: 0.5 },
      };
      expect(log.recordOutcome("s", 0, { score: -0.1, worker: "w", seconds: 0.5, detail })).toBe(true);
      expect(
        log.recordOutcome("s", 0, { score: 9, worker: "other", detail: { timings: { total: 1 } } }),
      ).toBe(false);
      expect(log.trials("s")[0]).toMatchObject({ state: "done", score: -0.1, worker: "w", detail });
    } finally {
      log.close();
    }
  });

  it("opens a log written before trial details existed, its trials kept with no detail", () => {
    const path = join(dir, "old.sqlite");
    const old = new Database(path);
    old.exec(`
      CREATE TABLE studies (id TEXT PRIMARY KEY, settings TEXT NOT NULL);
      CREATE TABLE events (study TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (study, seq));
      CREATE TABLE trials (
        study TEXT NOT NULL, number INTEGER NOT NULL, x TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
        score REAL, worker TEXT, error TEXT, seconds REAL, PRIMARY KEY (study, number));
      INSERT INTO studies VALUES ('s', '{}');
      INSERT INTO trials VALUES ('s', 0, '[0.5]', 'done', -1, 'w', NULL, 0.1);
      INSERT INTO trials VALUES ('s', 1, '[0.7]', 'pending', NULL, NULL, NULL, NULL);
    `);
    old.close();
    const log = new StudyLog(path);
    try {
      expect(log.trials("s")[0]).toMatchObject({ number: 0, score: -1, detail: null });
      expect(log.recordOutcome("s", 1, { score: -2, detail: { images: [] } })).toBe(true);
      expect(log.trials("s")[1]).toMatchObject({ state: "done", detail: { images: [] } });
    } finally {
      log.close();
    }
  });
});
