import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openLibrary } from "../library/open-library.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import {
  countAwaitingRatings,
  findRating,
  giveRating,
  listAwaitingRatings,
  requestRating,
} from "./rating-store.js";
import { createStudy, listTrials, recordTrial } from "./study-store.js";

let dir = "";
useTempDirWithHashCache("gyoza-rating-store-", (path) => (dir = path), { each: true });

const definition = {
  name: "rated",
  spaceYaml: "step: m\n",
  baseRecipe: "gyoza: 1\n",
  optimizer: "random",
  seed: 7,
  settings: { budget: 4 },
};
const images = [
  { path: "/i/trial-0002-p0-s1.png", prompt: "a cat", seed: 1 },
  { path: "/i/trial-0002-p0-s2.png", prompt: "a cat", seed: 2 },
];

describe("rating store", () => {
  it("asks for a rating: the trial is pending with its images, listed as awaiting until rated", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    const request = requestRating(db, id, { number: 2, x: [0.5], images });
    expect(request).toMatchObject({ trial: 2, images, scores: null, ratedAt: null });
    expect(listTrials(db, id)).toMatchObject([{ number: 2, state: "pending", x: [0.5], images }]);
    expect(listAwaitingRatings(db, id).map((r) => r.trial)).toEqual([2]);
    expect(countAwaitingRatings(db).get(id)).toBe(1);

    const rated = giveRating(db, id, 2, [0.25, -1]);
    expect(rated.scores).toEqual([0.25, -1]);
    expect(rated.ratedAt).toMatch(/^\d{4}-/);
    expect(listAwaitingRatings(db, id)).toEqual([]);
    expect(countAwaitingRatings(db).has(id)).toBe(false);
    // the study records the outcome; the pending row becomes done
    recordTrial(db, id, { number: 2, x: [0.5], state: "done", score: -0.375, images });
    expect(listTrials(db, id)).toMatchObject([{ number: 2, state: "done", score: -0.375 }]);
    db.close();
  });

  it("keeps a rating given while the study was stopped when the resumed study asks again", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    requestRating(db, id, { number: 0, x: [0.1], images });
    giveRating(db, id, 0, [1, 0]);
    const again = requestRating(db, id, { number: 0, x: [0.1], images });
    expect(again.scores).toEqual([1, 0]);
    db.close();
  });

  it("refuses a second rating of a trial: the first one stands", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    requestRating(db, id, { number: 1, x: [0.2], images });
    giveRating(db, id, 1, [0, 1]);
    expect(() => giveRating(db, id, 1, [1, 0])).toThrow(/trial 1 was rated already/);
    expect(findRating(db, id, 1)!.scores).toEqual([0, 1]);
    db.close();
  });

  it("refuses a rating of a trial that was never asked for one", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    expect(() => giveRating(db, id, 5, [1])).toThrow(/trial 5 was never asked for a rating/);
    db.close();
  });

  it("refuses the wrong number of scores and a non-finite score, leaving the trial awaiting", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    requestRating(db, id, { number: 3, x: [0.3], images });
    expect(() => giveRating(db, id, 3, [1])).toThrow(/trial 3 has 2 images: give 2 scores, not 1/);
    expect(() => giveRating(db, id, 3, [1, Number.POSITIVE_INFINITY])).toThrow(
      /scores\[1\] is not a finite number/,
    );
    expect(() => giveRating(db, id, 3, [Number.NaN, 1])).toThrow(/scores\[0\] is not a finite number/);
    expect(listAwaitingRatings(db, id).map((r) => r.trial)).toEqual([3]);
    db.close();
  });

  it("refuses to ask for a rating of a trial without images", () => {
    const db = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(db, definition);
    expect(() => requestRating(db, id, { number: 0, x: [0.1], images: [] })).toThrow(/no images to rate/);
    expect(listTrials(db, id)).toEqual([]);
    db.close();
  });

  it("shows a rating written by a second connection to the same library file (the server's)", () => {
    const study = openLibrary(join(dir, "library.db"));
    const server = openLibrary(join(dir, "library.db"));
    const { id } = createStudy(study, definition);
    requestRating(study, id, { number: 0, x: [0.1], images });
    expect(listAwaitingRatings(server, id).map((r) => r.trial)).toEqual([0]);
    giveRating(server, id, 0, [0.5, 0.5]);
    expect(findRating(study, id, 0)!.scores).toEqual([0.5, 0.5]);
    study.close();
    server.close();
  });
});
