import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStudy, recordTrial } from "../automix/study-store.js";
import { openLibrary } from "../library/open-library.js";
import { loadRecipe } from "../recipe/index.js";
import { DEMO_PNG, recordDemoStudy } from "../test-support/automix-study.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import type { AutomixStudySummary, AutomixStudyView } from "./automix-api.js";
import { createServer, type GyozaServer } from "./create-server.js";

/**
 * The automix routes of gyoza serve on studies recorded in a real library file by the study store
 * (the same calls runStudy makes), one of them written by a second connection while the server
 * runs, as the CLI does; and hostile trial records: their image paths are untrusted.
 */
let dir = "";
useTempDirWithHashCache("gyoza-serve-automix-", (path) => (dir = path));
let server: GyozaServer;
let origin: string;
let outside: string;

beforeAll(async () => {
  outside = mkdtempSync(join(tmpdir(), "gyoza-automix-outside-"));
  recordDemoStudy(dir, join(dir, "library.db"), "first", outside);
  server = await createServer({ library: join(dir, "library.db"), roots: [dir] });
  origin = new URL(await server.listen()).origin;
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (outside) rmSync(outside, { recursive: true, force: true });
});

function get(path: string, token: string | null = server.token): Promise<Response> {
  return fetch(`${origin}${path}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
}
async function json<T>(path: string): Promise<T> {
  const response = await get(path);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as T;
}

describe("GET /api/automix/studies", () => {
  it("lists a study with its trial counts and best score", async () => {
    const [first] = await json<AutomixStudySummary[]>("/api/automix/studies");
    expect(first).toMatchObject({
      name: "first",
      optimizer: "quadratic",
      seed: 7,
      budget: 10,
      status: "running",
      trials: { done: 3, failed: 1, pending: 1 },
      bestScore: 0.7,
    });
  });

  it("sees a study another process writes into the library while the server runs", async () => {
    recordDemoStudy(dir, join(dir, "library.db"), "second", outside);
    const names = (await json<AutomixStudySummary[]>("/api/automix/studies")).map((s) => s.name);
    expect(names).toEqual(["first", "second"]);
  });

  it("refuses a request without the token", async () => {
    expect((await get("/api/automix/studies", null)).status).toBe(401);
  });
});

describe("GET /api/automix/studies/:name", () => {
  it("gives every trial with weights in block terms, the best-so-far curve and the importance", async () => {
    const view = await json<AutomixStudyView>("/api/automix/studies/first");
    expect(view.trialList.map((t) => [t.number, t.state, t.score])).toEqual([
      [0, "done", 0.4],
      [1, "failed", null],
      [2, "done", 0.7],
      [3, "done", 0.5],
      [4, "pending", null],
    ]);
    expect(view.trialList[0]!.weights).toMatch(/^mix\.alpha: 0\.5,0\.2,/);
    expect(view.trialList[0]!.scores).toEqual({ clip: { scores: [0.4], tally: 0.4 } });
    expect(view.trialList[1]!.error).toBe("CUDA out of memory");
    expect(view.trialList[0]!.images[0]!.url).toBe("/automix/studies/first/trials/0/images/0");
    expect(view.bestSoFar).toEqual([
      { trial: 0, best: 0.4 },
      { trial: 2, best: 0.7 },
    ]);
    expect(view.importance.length).toBe(14);
  });

  it("answers 404 for a study that does not exist", async () => {
    const response = await get("/api/automix/studies/nope");
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/no automix study called "nope"/);
  });
});

describe("GET /api/automix/studies/:name/trials/:n/images/:i", () => {
  it("streams an image the trial names", async () => {
    const response = await get("/api/automix/studies/first/trials/0/images/0");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await response.arrayBuffer())).toEqual(DEMO_PNG);
  });

  it("refuses a trial image that is a symlink to a file outside the study's images folder", async () => {
    const response = await get("/api/automix/studies/first/trials/0/images/1");
    expect(response.status).toBe(404);
    expect(await response.text()).not.toMatch(/not for you/);
  });

  it("refuses a trial image path that climbs out of the study's images folder", async () => {
    expect([403, 404]).toContain((await get("/api/automix/studies/first/trials/0/images/2")).status);
  });

  it("gives no link for an image a distributed worker made but did not keep, and answers 404 for it", async () => {
    const db = openLibrary(join(dir, "library.db"));
    try {
      const study = createStudy(db, {
        name: "distributed",
        spaceYaml: "",
        baseRecipe: "",
        optimizer: "random",
        seed: 1,
        settings: { budget: 1, images: { out: join(dir, "images-first") } },
      });
      recordTrial(db, study.id, {
        number: 0,
        x: [0.5],
        state: "done",
        score: 1,
        images: [{ path: "", prompt: "a cat", seed: 3 }],
        worker: "gpu-2",
      });
    } finally {
      db.close();
    }
    const view = await json<AutomixStudyView>("/api/automix/studies/distributed");
    expect(view.trialList[0]?.images).toEqual([{ url: null, prompt: "a cat", seed: 3 }]);
    const response = await get("/api/automix/studies/distributed/trials/0/images/0");
    expect(response.status).toBe(404);
    expect(await response.text()).toMatch(/not kept/);
  });

  it("answers 404 for an image index or trial the study does not have", async () => {
    expect((await get("/api/automix/studies/first/trials/0/images/9")).status).toBe(404);
    expect((await get("/api/automix/studies/first/trials/99/images/0")).status).toBe(404);
    expect((await get("/api/automix/studies/first/trials/x/images/0")).status).toBe(404);
  });
});

describe("GET /api/automix/studies/:name/best-recipe", () => {
  it("gives the best trial's candidate as a recipe that loads, naming the study in its description", async () => {
    const best = await json<{ yaml: string; trial: number; score: number }>(
      "/api/automix/studies/first/best-recipe",
    );
    expect(best).toMatchObject({ trial: 2, score: 0.7 });
    const recipe = loadRecipe(best.yaml, { sourceName: "best" });
    expect(recipe.output.description).toMatch(/study "first".*trial 2, score 0.7/);
    expect(recipe.steps.mix!.alpha).not.toBe(0.5);
  });
});
