import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openLibrary } from "../library/open-library.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { createStudy, getStudy, listTrials, recordTrial, setStudyStatus } from "./study-store.js";

let dir = "";
useTempDirWithHashCache("gyoza-study-store-", (path) => (dir = path), { each: true });

const definition = {
  name: "demo",
  spaceYaml: "step: m\n",
  baseRecipe: "gyoza: 1\n",
  optimizer: "random",
  seed: 7,
  settings: { budget: 4 },
};

describe("study store", () => {
  it("creates a study, refuses a second one with the same name, and keeps its settings", () => {
    const db = openLibrary(join(dir, "library.db"));
    const study = createStudy(db, definition);
    expect(study).toMatchObject({
      name: "demo",
      optimizer: "random",
      seed: 7,
      status: "running",
      settings: { budget: 4 },
    });
    expect(() => createStudy(db, definition)).toThrow(/already exists/);
    setStudyStatus(db, study.id, "finished");
    expect(getStudy(db, "demo").status).toBe("finished");
    expect(() => getStudy(db, "dmeo")).toThrow(/no automix study called "dmeo"/);
    db.close();
  });

  it("records a trial once: a second outcome for a finished trial changes nothing", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    expect(recordTrial(db, id, { number: 0, x: [0.25], state: "done", score: 1.5, worker: "w1" })).toBe(true);
    expect(recordTrial(db, id, { number: 0, x: [0.25], state: "done", score: 9, worker: "w2" })).toBe(false);
    expect(recordTrial(db, id, { number: 0, x: [0.25], state: "failed", error: "late" })).toBe(false);
    const trials = listTrials(db, id);
    expect(trials).toHaveLength(1);
    expect(trials[0]).toMatchObject({
      number: 0,
      x: [0.25],
      state: "done",
      score: 1.5,
      worker: "w1",
      error: null,
    });
    db.close();
  });

  it("turns a pending trial into a finished one exactly once", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    expect(recordTrial(db, id, { number: 3, x: [0.5], state: "pending", worker: "w1" })).toBe(true);
    expect(recordTrial(db, id, { number: 3, x: [0.5], state: "pending", worker: "w2" })).toBe(false);
    expect(
      recordTrial(db, id, { number: 3, x: [0.5], state: "failed", error: "worker died", worker: "w2" }),
    ).toBe(true);
    expect(recordTrial(db, id, { number: 3, x: [0.5], state: "done", score: 2 })).toBe(false);
    expect(listTrials(db, id)).toMatchObject([
      { number: 3, state: "failed", error: "worker died", score: null },
    ]);
    db.close();
  });

  it("stores a failed trial's NaN score as null, never as a number", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    recordTrial(db, id, {
      number: 0,
      x: [0.1, 0.2],
      state: "failed",
      score: Number.NaN,
      error: "backend down",
    });
    expect(listTrials(db, id)[0]!.score).toBeNull();
    expect(() => recordTrial(db, id, { number: 1, x: [Number.NaN], state: "done", score: 1 })).toThrow(
      /non-finite/,
    );
    db.close();
  });
});
