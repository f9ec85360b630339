import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openLibrary } from "../../library/open-library.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";
import { findRating, giveRating, listAwaitingRatings } from "../rating-store.js";
import { parseStudyFile, readStudyFile } from "../study-file.js";
import { createStudy, listTrials } from "../study-store.js";
import { manualScorer } from "./manual-scorer.js";

let dir = "";
useTempDirWithHashCache("gyoza-manual-scorer-", (path) => (dir = path), { each: true });

const png = Buffer.from("89504e470d0a1a0a", "hex");
const images = [
  { png, prompt: "a cat", seed: 1 },
  { png, prompt: "a cat", seed: 2 },
];
const kept = [
  { path: "/out/trial-0000-p0-s1.png", prompt: "a cat", seed: 1 },
  { path: "/out/trial-0000-p0-s2.png", prompt: "a cat", seed: 2 },
];

function library() {
  const db = openLibrary(join(dir, "library.db"));
  const study = createStudy(db, {
    name: "manual",
    spaceYaml: "",
    baseRecipe: "",
    optimizer: "random",
    seed: 1,
    settings: {},
  });
  return { db, study };
}

describe("manual scorer", () => {
  it("asks for a rating of the trial, waits, and returns the scores another connection gives", async () => {
    const { db, study } = library();
    const server = openLibrary(join(dir, "library.db"));
    const waiting: unknown[] = [];
    const scorer = manualScorer({ db, pollMs: 2, maxPollMs: 10, onWaiting: (t) => waiting.push(t) });
    const scores = scorer.score(images, { trial: { study: "manual", number: 0, x: [0.5], images: kept } });
    await expect.poll(() => listAwaitingRatings(server, study.id).length).toBe(1);
    expect(listTrials(server, study.id)).toMatchObject([{ number: 0, state: "pending", images: kept }]);
    giveRating(server, study.id, 0, [0.2, 0.9]);
    expect(await scores).toEqual([0.2, 0.9]);
    expect(waiting).toEqual([{ study: "manual", number: 0, images: 2 }]);
    server.close();
    db.close();
  });

  it("stops waiting when the study's signal is aborted, as an interrupt, leaving the trial awaiting", async () => {
    const { db, study } = library();
    const controller = new AbortController();
    const scorer = manualScorer({ db, pollMs: 5, maxPollMs: 5 });
    const scores = scorer.score(images, {
      signal: controller.signal,
      trial: { study: "manual", number: 1, x: [0.5], images: kept },
    });
    await expect.poll(() => listAwaitingRatings(db, study.id).length).toBe(1);
    controller.abort();
    await expect(scores).rejects.toMatchObject({ code: "interrupted" });
    expect(findRating(db, study.id, 1)!.scores).toBeNull();
    db.close();
  });

  it("refuses a study with no library, saying why", () => {
    expect(() => manualScorer({ db: undefined })).toThrow(/this study has no library/);
  });

  it("refuses to score a trial it is not told about, or whose images the study does not keep", async () => {
    const { db } = library();
    const scorer = manualScorer({ db });
    await expect(scorer.score(images)).rejects.toThrow(/was not told which/);
    await expect(
      scorer.score(images, { trial: { study: "manual", number: 0, x: [0.5], images: null } }),
    ).rejects.toThrow(/does not keep them/);
    db.close();
  });

  it("fails the trial when the library holds a rating that does not fit its images", async () => {
    const { db, study } = library();
    db.prepare(
      "INSERT INTO automix_ratings (study_id, trial, images, requested_at, scores, rated_at) VALUES (?, 0, ?, 'x', '[1]', 'y')",
    ).run(study.id, JSON.stringify(kept));
    const scorer = manualScorer({ db });
    await expect(
      scorer.score(images, { trial: { study: "manual", number: 0, x: [0.5], images: kept } }),
    ).rejects.toThrow(/trial 0 has 2 images: give 2 scores, not 1/);
    db.close();
  });
});

describe("a study file's manual scorer", () => {
  const base = (
    scorers: string,
    images = "images: { backend: stand-in, prompts: [a], seeds: [1], out: img/ }\n",
  ) => `automix-study: 1\nname: s\nrecipe: r.yaml\nspace: s.yaml\nbudget: 3\n${images}scorers:\n${scorers}`;

  it("is read with its weight and tally", () => {
    const study = parseStudyFile(
      base("  - { type: manual, name: pick, weight: 2, tally: median }\n"),
      "/x/s.yaml",
    );
    expect(study.scorers).toEqual([{ type: "manual", name: "pick", weight: 2, tally: "median" }]);
  });

  it("is refused without images, or when the study keeps no images (images.out)", () => {
    expect(() => parseStudyFile(base("  - { type: manual }\n", ""), "/x/s.yaml")).toThrow(
      /manual scorer scores images: the study needs an images: section/,
    );
    expect(() =>
      parseStudyFile(
        base("  - { type: manual }\n", "images: { backend: stand-in, prompts: [a], seeds: [1] }\n"),
        "/x/s.yaml",
      ),
    ).toThrow(/the study must keep them \(images.out\)/);
  });

  it("reads the shipped manual example study", async () => {
    const study = await readStudyFile(join(import.meta.dirname, "../examples/manual-study.yaml"));
    expect(study).toMatchObject({ name: "manual-demo", budget: 4 });
    expect(study.scorers).toEqual([{ type: "manual", name: "pick", weight: 1, tally: "mean" }]);
    expect(study.images?.out?.endsWith("/demo-out/automix/images-manual")).toBe(true);
  });

  it("is refused twice in one study: a trial gets one rating", () => {
    expect(() =>
      parseStudyFile(base("  - { type: manual, name: a }\n  - { type: manual, name: b }\n"), "/x/s.yaml"),
    ).toThrow(/"b" is a second manual scorer/);
  });
});
