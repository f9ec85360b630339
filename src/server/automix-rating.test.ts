import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findRating, requestRating } from "../automix/rating-store.js";
import { getStudy, listTrials } from "../automix/study-store.js";
import { tally } from "../automix/tally.js";
import { openLibrary } from "../library/open-library.js";
import { recordDemoStudy, startManualStudy } from "../test-support/automix-study.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import type { AutomixRatingResponse, AutomixStudySummary, AutomixStudyView } from "./automix-api.js";
import { createServer, type GyozaServer } from "./create-server.js";

/**
 * Manual rating (issue #24, scorer 4) across two processes' worth of connections, as in use: a
 * study with a `type: manual` scorer runs in this process (runStudy, stand-in backend) on its own
 * connection to the library file, and gyoza serve's app, on another, takes the ratings that let it
 * continue. Then every way a rating can be refused, each with its own status and message.
 */
let dir = "";
useTempDirWithHashCache("gyoza-automix-rating-", (path) => (dir = path));
let server: GyozaServer;
const library = () => join(dir, "library.db");

beforeAll(async () => {
  server = await createServer({ library: library(), roots: [dir] });
}, 60_000);

afterAll(async () => {
  await server?.close();
});

async function call(
  method: "GET" | "POST",
  url: string,
  body?: unknown,
  token: string | null = server.token,
) {
  const response = await server.app.inject({
    method,
    url,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { payload: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  return { status: response.statusCode, body: response.json() as unknown, raw: response };
}

const view = async (name: string) =>
  (await call("GET", `/api/automix/studies/${name}`)).body as AutomixStudyView;
const rate = (name: string, trial: number | string, body: unknown) =>
  call("POST", `/api/automix/studies/${name}/trials/${trial}/rating`, body);
const errorOf = (answer: { body: unknown }) =>
  (answer.body as { error: { code: string; message: string } }).error;

/** Polls the server's view until `trial` awaits a rating (the study process asked for it). */
async function awaitPending(name: string, trial: number) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pending = (await view(name)).pendingRatings.find((p) => p.trial === trial);
    if (pending) return pending;
    if (Date.now() > deadline) throw new Error(`trial ${trial} of ${name} never awaited a rating`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("a study with a manual scorer, rated through gyoza serve", () => {
  it("waits for each trial's rating, continues when it is posted and records the tally of the given scores", {
    timeout: 60_000,
  }, async () => {
    const run = await startManualStudy(dir, library(), "rated", { budget: 2, seeds: [1, 2, 3] });
    try {
      const first = await awaitPending("rated", 0);
      expect(first.images.map((image) => [image.url, image.seed])).toEqual([
        ["/automix/studies/rated/trials/0/images/0", 1],
        ["/automix/studies/rated/trials/0/images/1", 2],
        ["/automix/studies/rated/trials/0/images/2", 3],
      ]);
      const image = await server.app.inject({
        url: `/api${first.images[1]!.url}`,
        headers: { authorization: `Bearer ${server.token}` },
      });
      expect(image.statusCode).toBe(200);
      expect(image.rawPayload.subarray(1, 4).toString()).toBe("PNG");
      const list = (await call("GET", "/api/automix/studies")).body as AutomixStudySummary[];
      expect(list.find((s) => s.name === "rated")).toMatchObject({
        awaitingRating: 1,
        trials: { pending: 1 },
      });

      const answer = await rate("rated", 0, { scores: [0.5, 2, -1] });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body as AutomixRatingResponse).toMatchObject({ trial: 0, scores: [0.5, 2, -1] });
      await awaitPending("rated", 1);
      expect((await rate("rated", 1, { best: 2 })).status).toBe(200);

      const result = await run.result;
      expect(result.status).toBe("finished");
      expect(result.trials.map((t) => [t.number, t.state])).toEqual([
        [0, "done"],
        [1, "done"],
      ]);
      expect(result.trials[0]!.scores).toEqual({
        pick: { scores: [0.5, 2, -1], tally: tally([0.5, 2, -1], "mean") },
      });
      expect(result.trials[0]!.score).toBeCloseTo(0.5, 12);
      expect(result.trials[1]!.scores!.pick!.scores).toEqual([0, 0, 1]);
      expect(result.trials[1]!.score).toBeCloseTo(1 / 3, 12);
      const after = await view("rated");
      expect(after.pendingRatings).toEqual([]);
      expect(after.trialList.map((t) => t.score)).toEqual(result.trials.map((t) => t.score));
    } finally {
      await run.close();
    }
  });

  it("stopped while waiting, leaves the trial pending; resumed, it uses the rating given meanwhile", {
    timeout: 60_000,
  }, async () => {
    const run = await startManualStudy(dir, library(), "stopped", { budget: 1 });
    await awaitPending("stopped", 0);
    run.controller.abort();
    await expect(run.result).rejects.toMatchObject({ code: "interrupted" });
    await run.close();
    const db = openLibrary(library());
    try {
      const study = getStudy(db, "stopped");
      expect(study.status).toBe("stopped");
      expect(listTrials(db, study.id).map((t) => [t.number, t.state])).toEqual([[0, "pending"]]);
    } finally {
      db.close();
    }
    // rated while no study process runs
    expect((await rate("stopped", 0, { scores: [3, 1] })).status).toBe(200);
    const resumed = await startManualStudy(dir, library(), "stopped", { budget: 1, resume: true });
    try {
      const result = await resumed.result;
      expect(result).toMatchObject({ status: "finished", evaluated: 1 });
      expect(result.trials[0]).toMatchObject({ number: 0, state: "done", score: 2 });
    } finally {
      await resumed.close();
    }
  });

  it("resumed with no rating given, waits for the same trial again", { timeout: 60_000 }, async () => {
    const run = await startManualStudy(dir, library(), "again", { budget: 1 });
    const before = await awaitPending("again", 0);
    await run.close();
    const resumed = await startManualStudy(dir, library(), "again", { budget: 1, resume: true });
    try {
      const pending = await view("again");
      expect(pending.pendingRatings.map((p) => [p.trial, p.requested])).toEqual([[0, before.requested]]);
      expect((await rate("again", 0, { best: 0 })).status).toBe(200);
      expect((await resumed.result).trials[0]).toMatchObject({ state: "done", score: 0.5 });
    } finally {
      await resumed.close();
    }
  });
});

describe("POST /api/automix/studies/:name/trials/:n/rating refuses", () => {
  beforeAll(() => {
    // trials 0-4 of the demo study (0 done, 4 pending without a rating request); 5 and 6 await a rating of 2 images
    recordDemoStudy(dir, library(), "hostile");
    const db = openLibrary(library());
    try {
      const study = getStudy(db, "hostile");
      const image = { path: join(dir, "images-hostile", "t0.png"), prompt: "a cat", seed: 1 };
      for (const number of [5, 6])
        requestRating(db, study.id, { number, x: Array(14).fill(0.5), images: [image, image] });
    } finally {
      db.close();
    }
  });

  it("lists the trials awaiting a rating in the study's view, with their image links", async () => {
    const pending = (await view("hostile")).pendingRatings;
    expect(pending.map((p) => [p.trial, p.images.length])).toEqual([
      [5, 2],
      [6, 2],
    ]);
    expect(pending[0]!.images[1]!.url).toBe("/automix/studies/hostile/trials/5/images/1");
  });

  it("a rating for a study that does not exist (404)", async () => {
    const answer = await rate("nope", 5, { best: 0 });
    expect(answer.status).toBe(404);
    expect(errorOf(answer).message).toMatch(/no automix study called "nope"/);
  });

  it("a rating for a trial the study does not have (404)", async () => {
    for (const trial of [99, "x", "-1", "1e3"]) {
      const answer = await rate("hostile", trial, { best: 0 });
      expect(answer.status, String(trial)).toBe(404);
      expect(errorOf(answer).message).toMatch(/has no trial/);
    }
  });

  it("a rating for a trial that is not awaiting one: finished, or pending without a manual scorer's request (409)", async () => {
    for (const trial of [0, 4]) {
      const answer = await rate("hostile", trial, { best: 0 });
      expect(answer.status, String(trial)).toBe(409);
      expect(errorOf(answer)).toMatchObject({ code: "not-awaiting-rating" });
      expect(errorOf(answer).message).toMatch(
        new RegExp(`trial ${trial} of study "hostile" is not awaiting a rating`),
      );
    }
  });

  it("a second rating of a trial that was rated already (409), keeping the first", async () => {
    expect((await rate("hostile", 6, { scores: [0.25, 0.75] })).status).toBe(200);
    const again = await rate("hostile", 6, { best: 0 });
    expect(again.status).toBe(409);
    expect(errorOf(again)).toMatchObject({ code: "already-rated" });
    expect(errorOf(again).message).toMatch(/trial 6 of study "hostile" was rated already/);
    const db = openLibrary(library());
    try {
      expect(findRating(db, getStudy(db, "hostile").id, 6)!.scores).toEqual([0.25, 0.75]);
    } finally {
      db.close();
    }
  });

  it("the wrong number of scores (400)", async () => {
    for (const scores of [[1], [1, 2, 3], []]) {
      const answer = await rate("hostile", 5, { scores });
      expect(answer.status, JSON.stringify(scores)).toBe(400);
      expect(errorOf(answer).message).toMatch(
        new RegExp(`trial 5 has 2 images: give 2 scores, not ${scores.length}`),
      );
    }
  });

  it("scores that are not finite numbers (400): 1e400 parses to Infinity, a string, null", async () => {
    const infinite = await rate("hostile", 5, '{"scores": [1e400, 0]}');
    expect(infinite.status).toBe(400);
    expect(errorOf(infinite).message).toBe("body.scores[0] is not a finite number (Infinity)");
    for (const scores of [
      [1, "2"],
      [null, 1],
      [1, [2]],
    ]) {
      const answer = await rate("hostile", 5, { scores });
      expect(answer.status, JSON.stringify(scores)).toBe(400);
      expect(errorOf(answer).message).toMatch(/body\.scores\[\d\] is not a finite number/);
    }
  });

  it("a best image index out of range or not a whole number (400)", async () => {
    for (const best of [2, -1, 1.5, "0", null]) {
      const answer = await rate("hostile", 5, { best });
      expect(answer.status, JSON.stringify(best)).toBe(400);
      expect(errorOf(answer).message).toMatch(
        typeof best === "number" && Number.isInteger(best)
          ? /body\.best: trial 5 has no image -?\d \(its images are 0 to 1\)/
          : /body\.best: .* is not an image index/,
      );
    }
  });

  it("a malformed body (400): not JSON, not an object, both or neither of scores and best, an unknown field", async () => {
    const cases: [unknown, RegExp][] = [
      ["{scores: [1, 2]", /JSON/i],
      [[1, 0], /not a JSON object/],
      [{ scores: [1, 0], best: 0 }, /exactly one of scores and best/],
      [{}, /exactly one of scores and best/],
      [{ score: [1, 0] }, /body\.score: unknown field/],
      [{ scores: "1,0" }, /body\.scores: not a list of numbers/],
    ];
    for (const [body, message] of cases) {
      const answer = await rate("hostile", 5, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(errorOf(answer).message).toMatch(message);
    }
    // none of them rated the trial
    expect((await view("hostile")).pendingRatings.map((p) => p.trial)).toEqual([5]);
  });

  it("a rating without the token (401)", async () => {
    const answer = await call("POST", "/api/automix/studies/hostile/trials/5/rating", { best: 0 }, null);
    expect(answer.status).toBe(401);
    expect((await view("hostile")).pendingRatings.map((p) => p.trial)).toEqual([5]);
  });

  it("is documented in the OpenAPI document with its body", async () => {
    const doc = (await call("GET", "/api/openapi.json")).body as {
      paths: Record<string, { post?: { summary: string; requestBody?: unknown } }>;
    };
    const route = doc.paths["/api/automix/studies/{name}/trials/{n}/rating"]?.post;
    expect(route?.summary).toMatch(/rating/);
    expect(JSON.stringify(route?.requestBody)).toMatch(/"best"/);
  });
});
