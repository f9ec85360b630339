import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createBackend, loadGyozaConfig, pickBackend } from "../../backends/index.js";
import { openLibrary } from "../../library/open-library.js";
import { type ComfyStandin, startComfyStandin } from "../../test-support/comfyui-standin.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";
import type { ResolvedStudy } from "../study-file.js";
import { getStudy, listTrials } from "../study-store.js";
import { RedisTestServer } from "./redis-test-server.js";
import { jobRecipe, type StudyEvaluator, studyEvaluator } from "./study-evaluator.js";
import { planDistributedStudy } from "./study-settings.js";
import { type EvaluationWorker, startEvaluationWorker } from "./worker.js";

// A study file run through Redis (gyoza automix run --redis) with workers that merge, render on the
// ComfyUI stand-in and score: against a real redis-server of its own, like distributed.test.ts.
const haveRedis = RedisTestServer.available();
const requireRedis = process.env.GYOZA_REQUIRE_REDIS === "1";

const EXAMPLES = join(import.meta.dirname, "../examples");
const CLI = join(import.meta.dirname, "../../cli/main.ts");
const FAST = { lockDurationMs: 5000, stalledIntervalMs: 1000 };

let dir = "";
useTempDirWithHashCache("gyoza-distributed-study-", (path) => (dir = path), { each: true });

/** The demo's recipe and space, micro models a and b, a study file scoring like-b (weights) and brightness (HTTP stand-in). */
async function writeStudy(name: string, budget: number): Promise<string> {
  const study = join(dir, "study");
  await mkdir(study, { recursive: true });
  for (const [model, seed] of [
    ["a", "1"],
    ["b", "2"],
  ] as const) {
    const made = await runCli(
      "synth",
      join(study, `${model}.safetensors`),
      "--size",
      "micro",
      "--seed",
      seed,
    );
    expect(made.code, made.stderr).toBe(0);
  }
  const recipe = (await readFile(join(EXAMPLES, "demo-recipe.yaml"), "utf8")).replaceAll(
    "../../../demo-out/automix/",
    "",
  );
  await writeFile(join(study, "recipe.yaml"), recipe);
  await copyFile(join(EXAMPLES, "demo-space.yaml"), join(study, "space.yaml"));
  const file = join(study, `${name}.yaml`);
  await writeFile(
    file,
    `automix-study: 1
name: ${name}
recipe: recipe.yaml
space: space.yaml
optimizer: random
seed: 3
budget: ${budget}
images:
  backend: comfy
  prompts: ["a bowl of gyoza"]
  seeds: [1, 2]
  steps: 2
  width: 64
  height: 64
scorers:
  - { name: like-b, type: weights, target: b.safetensors }
  - { name: brightness, type: http, url: stand-in, weight: 0.05 }
`,
  );
  return file;
}

/** A GPU host: its own copies of the inputs, its own ComfyUI (stand-in) and gyoza.yaml naming it. */
async function host(name: string): Promise<{ inputs: string; config: string; comfy: ComfyStandin }> {
  const root = join(dir, name);
  const inputs = join(root, "inputs");
  const models = join(root, "models");
  await mkdir(inputs, { recursive: true });
  await mkdir(models, { recursive: true });
  for (const model of ["a", "b"])
    await copyFile(join(dir, "study", `${model}.safetensors`), join(inputs, `${model}.safetensors`));
  const comfy = await startComfyStandin({ modelFolder: models, stepDelayMs: 0 });
  comfies.push(comfy);
  const config = join(root, "gyoza.yaml");
  await writeFile(
    config,
    `backends:\n  comfy:\n    kind: comfyui\n    url: ${comfy.url}\n    model_folder: ${models}\n    timeout_seconds: 30\n`,
  );
  return { inputs, config, comfy };
}

const comfies: ComfyStandin[] = [];
const workers: EvaluationWorker[] = [];
const evaluators: StudyEvaluator[] = [];
let redis: RedisTestServer | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.all(workers.splice(0).map((worker) => worker.close()));
  for (const evaluator of evaluators.splice(0)) await evaluator.close();
  for (const comfy of comfies.splice(0)) await comfy.close();
  await redis?.kill();
  redis = undefined;
});

/** What `gyoza worker --backend comfy --config HOST/gyoza.yaml --inputs HOST/inputs --name NAME` starts. */
async function startWorker(name: string, on: { inputs: string; config: string }): Promise<void> {
  const backend = createBackend(pickBackend(await loadGyozaConfig({ path: on.config }), "comfy"));
  const evaluator = studyEvaluator({
    backend,
    work: join(dir, name, "work"),
    hashCacheDir: join(dir, "cache"),
  });
  evaluators.push(evaluator);
  const worker = await startEvaluationWorker({
    redisUrl: (redis as RedisTestServer).url,
    evaluator: evaluator.evaluate,
    inputDirs: [on.inputs],
    name,
    hashCacheDir: join(dir, "cache"),
    ...FAST,
  });
  workers.push(worker);
  await worker.ready();
}

/** `gyoza worker ARGS…` in a process of its own; resolves once it takes jobs. */
async function workerProcess(
  args: string[],
): Promise<{ stderr: () => string; exited: Promise<number | null>; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "worker", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, GYOZA_CACHE_DIR: join(dir, "cache") },
  });
  children.push(child);
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/taking jobs/.test(stderr)) resolve();
    });
    void exited.then((code) => reject(new Error(`gyoza worker exited (${code}):\n${stderr}`)));
  });
  return { stderr: () => stderr, exited, child };
}

describe.skipIf(!haveRedis && !requireRedis)("a study file run through Redis", () => {
  it("gyoza automix run --redis with two workers on ComfyUI stand-ins (one of them the gyoza worker command) finishes its budget, each trial in the library once with its worker, tallies and image count, and automix show / best read it", async () => {
    redis = await RedisTestServer.start(dir);
    const file = await writeStudy("dist", 5);
    const [one, two] = [await host("gpu-1"), await host("gpu-2")];
    await startWorker("gpu-1", one);
    // the command line README gives a GPU host
    const cli = await workerProcess([
      "--backend",
      "comfy",
      "--config",
      two.config,
      "--redis",
      redis.url,
      "--inputs",
      two.inputs,
      "--work",
      join(dir, "gpu-2", "work"),
      "--name",
      "gpu-2",
    ]);
    const library = join(dir, "library.db");
    const run = await runCli(
      "automix",
      "run",
      file,
      "--library",
      library,
      "--redis",
      redis.url,
      "--in-flight",
      "2",
      "--json",
    );
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ study: "dist", status: "finished", trials: 5, failed: 0 });
    expect(run.stderr).toMatch(/trial \d+: score -?\d+\.\d+ by gpu-[12] \(2 images, [\d.]+ s\)/);

    const db = openLibrary(library);
    try {
      const study = getStudy(db, "dist");
      expect(study.status).toBe("finished");
      expect(study.settings).toMatchObject({ distributed: true, budget: 5, inFlight: 2 });
      const trials = listTrials(db, study.id);
      expect(trials.map((trial) => trial.number)).toEqual([0, 1, 2, 3, 4]);
      for (const trial of trials) {
        expect(trial.state).toBe("done");
        expect(["gpu-1", "gpu-2"]).toContain(trial.worker);
        expect(trial.images?.map(({ prompt, seed }) => ({ prompt, seed }))).toEqual([
          { prompt: "a bowl of gyoza", seed: 1 },
          { prompt: "a bowl of gyoza", seed: 2 },
        ]);
        expect(trial.scores?.["like-b"]?.scores).toHaveLength(1);
        expect(trial.scores?.brightness?.scores).toHaveLength(2);
        expect(trial.autov3).toMatch(/^[0-9a-f]{64}$/);
        expect(trial.timings?.generate).toBeGreaterThanOrEqual(0);
        // the combined score is the weighted tallies, as in-process
        const combined = trial.scores!["like-b"]!.tally + 0.05 * trial.scores!.brightness!.tally;
        expect(trial.score).toBeCloseTo(combined, 9);
      }
      expect(Math.max(...trials.map((t) => t.score!))).toBe(summary.best.score);
      // two jobs in flight, one job at a time per worker: both took work
      expect(new Set(trials.map((t) => t.worker))).toEqual(new Set(["gpu-1", "gpu-2"]));
    } finally {
      db.close();
    }
    // the workers rendered through their own backends, from merges staged in their own model folders
    expect(one.comfy.prompts.length + two.comfy.prompts.length).toBe(10);
    // and released them once scored: no candidate is left in a model folder
    for (const name of ["gpu-1", "gpu-2"])
      expect((await readdir(join(dir, name, "models"))).filter((f) => f.endsWith(".safetensors"))).toEqual(
        [],
      );

    const show = await runCli("automix", "show", "dist", "--library", library);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain("study dist (finished): random, seed 3, 5/5 trials, 0 failed");
    expect(show.stdout).toContain(`#${summary.best.trial}  score ${summary.best.score.toFixed(6)}`);
    const best = await runCli(
      "automix",
      "best",
      "dist",
      "--library",
      library,
      "--out",
      join(dir, "best.yaml"),
    );
    expect(best.code, best.stderr).toBe(0);
    expect(await readFile(join(dir, "best.yaml"), "utf8")).toContain(`trial ${summary.best.trial}`);

    // finished: resume records nothing new, and an in-process resume is refused with the way to do it
    const resumed = await runCli(
      "automix",
      "resume",
      "dist",
      "--library",
      library,
      "--redis",
      redis.url,
      "--json",
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ trials: 5, failed: 0 });
    const inProcess = await runCli("automix", "resume", "dist", "--library", library);
    expect(inProcess.code).not.toBe(0);
    expect(inProcess.stderr).toContain("gyoza automix resume dist --redis URL");

    // SIGTERM: the worker command finishes (no job now) and exits cleanly
    cli.child.kill("SIGTERM");
    expect(await cli.exited).toBe(0);
    expect(cli.stderr()).toMatch(/worker gpu-2: stopped/);
  }, 120_000);

  it("stopped with Ctrl-C while no worker runs, a study resumes with automix resume --redis and finishes, no trial lost or doubled", async () => {
    redis = await RedisTestServer.start(dir);
    const file = await writeStudy("later", 4);
    const library = join(dir, "library.db");
    const { defaultLogPath } = await import("../../cli/commands/automix-distributed.js");
    const { StudyLog } = await import("./study-log.js");
    const pending = () => {
      if (!existsSync(defaultLogPath(library, "later"))) return 0;
      const log = new StudyLog(defaultLogPath(library, "later"));
      try {
        return log.trials("later").filter((trial) => trial.state === "pending").length;
      } finally {
        log.close();
      }
    };
    const running = runCli(
      "automix",
      "run",
      file,
      "--library",
      library,
      "--redis",
      redis.url,
      "--in-flight",
      "2",
    );
    const start = Date.now();
    while (pending() < 2) {
      if (Date.now() - start > 30_000) throw new Error("the study never enqueued its first jobs");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    process.emit("SIGINT"); // what Ctrl-C does: the coordinator's handler stops the study
    const stopped = await running;
    process.exitCode = undefined; // the stopped study set 130; runCli read it back
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toContain(`gyoza automix resume later --redis ${redis.url}`);

    await startWorker("gpu-1", await host("gpu-1"));
    const resumed = await runCli(
      "automix",
      "resume",
      "later",
      "--library",
      library,
      "--redis",
      redis.url,
      "--json",
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ study: "later", trials: 4, failed: 0 });
    const db = openLibrary(library);
    try {
      const trials = listTrials(db, getStudy(db, "later").id);
      expect(trials.map((trial) => [trial.number, trial.state, trial.worker])).toEqual(
        [0, 1, 2, 3].map((n) => [n, "done", "gpu-1"]),
      );
      expect(trials.every((trial) => trial.images?.length === 2)).toBe(true);
    } finally {
      db.close();
    }
  }, 120_000);

  it("a worker whose input file differs refuses the job and names the file; the study stops with that message", async () => {
    redis = await RedisTestServer.start(dir);
    const file = await writeStudy("differs", 3);
    const other = await host("gpu-odd");
    const made = await runCli("synth", join(other.inputs, "b.safetensors"), "--size", "micro", "--seed", "9");
    expect(made.code, made.stderr).toBe(0);
    await startWorker("gpu-odd", other);
    const library = join(dir, "library.db");
    const run = await runCli("automix", "run", file, "--library", library, "--redis", redis.url);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(
      /worker gpu-odd refuses study differs: input "b\.safetensors" \(.*b\.safetensors\) has sha256 [0-9a-f]{64}, the study expects [0-9a-f]{64}/,
    );
    expect(other.comfy.prompts).toHaveLength(0);
  }, 120_000);
});

describe("a distributed study's plan and jobs", () => {
  it("names every file the recipe and scorers read as an input by file name and sha256, pinned in the base recipe", async () => {
    const file = await writeStudy("plan", 2);
    const { readStudyFile } = await import("../study-file.js");
    const { loadRecipe } = await import("../../recipe/index.js");
    const study = await readStudyFile(file);
    const base = loadRecipe(await readFile(study.recipeFile, "utf8"), { sourceName: study.recipeFile });
    const plan = await planDistributedStudy(study, base, {
      dimensions: 14,
      inFlight: 2,
      hashCacheDir: false,
    });
    expect(plan.settings.inputs.map((input) => input.name).sort()).toEqual([
      "a.safetensors",
      "b.safetensors",
    ]);
    expect(plan.base.inputs.a).toMatchObject({
      path: "a.safetensors",
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(plan.settings.objective).toMatchObject({
      kind: "study",
      images: { prompts: ["a bowl of gyoza"], seeds: [1, 2] },
      scorers: [
        { type: "weights", target: "b.safetensors" },
        { type: "http", url: "stand-in" },
      ],
    });
    expect(JSON.stringify(plan.settings)).not.toContain(dir); // no path of this machine travels
  });

  it("refuses a manual scorer: manual rating runs in-process only", async () => {
    const file = await writeStudy("manual", 2);
    const { readStudyFile } = await import("../study-file.js");
    const { loadRecipe } = await import("../../recipe/index.js");
    const study = await readStudyFile(file);
    const base = loadRecipe(await readFile(study.recipeFile, "utf8"), { sourceName: study.recipeFile });
    const manual = {
      ...study,
      scorers: [{ type: "manual", name: "me", weight: 1, tally: "mean" }],
    } as unknown as ResolvedStudy;
    await expect(planDistributedStudy(manual, base, { dimensions: 14, inFlight: 2 })).rejects.toThrow(
      /manual rating runs in-process only/,
    );
  });

  it("refuses a job recipe that reads a file which is not among its verified inputs", () => {
    const job = (path: string) => ({
      study: "s",
      trial: 0,
      x: [0.5],
      recipe: {
        gyoza: 1,
        inputs: { a: { path: "a.safetensors" }, b: { path } },
        steps: { mix: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.5 } },
        output: { path: "out.safetensors" },
      },
      inputs: [],
      objective: { kind: "weight-space" as const, target: [0.5] },
    });
    const verified = new Map([
      ["a.safetensors", "/host/a.safetensors"],
      ["b.safetensors", "/host/b.safetensors"],
    ]);
    expect(jobRecipe(job("b.safetensors"), verified).inputs.b?.path).toBe("/host/b.safetensors");
    for (const path of ["/etc/passwd", "../b.safetensors", "c.safetensors"])
      expect(() => jobRecipe(job(path), verified)).toThrow(/not among the job's inputs/);
  });

  it("evaluates a weight-only study job on a stand-in worker: merged under its work folder from the verified inputs, scored, the merge released", async () => {
    const file = await writeStudy("weights-only", 2);
    const text = await readFile(file, "utf8");
    await writeFile(
      file,
      text.replace(/images:[\s\S]*?scorers:/, "scorers:").replace(/ {2}- \{ name: brightness.*\n/, ""),
    );
    const { readStudyFile } = await import("../study-file.js");
    const { loadRecipe } = await import("../../recipe/index.js");
    const { SearchSpace } = await import("../search-space.js");
    const { StandInBackend } = await import("../standin-backend.js");
    const study = await readStudyFile(file);
    expect(study.images).toBeUndefined();
    const base = loadRecipe(await readFile(study.recipeFile, "utf8"), { sourceName: study.recipeFile });
    const space = SearchSpace.parse(await readFile(study.spaceFile, "utf8"), study.spaceFile);
    const plan = await planDistributedStudy(study, base, { dimensions: space.dimensions, inFlight: 1 });
    const x = new Array(space.dimensions).fill(0.3);
    const work = join(dir, "stand-in-work");
    const evaluator = studyEvaluator({ backend: new StandInBackend(join(dir, "unused")), work });
    evaluators.push(evaluator);
    const inputs = new Map(plan.settings.inputs.map((input) => [input.name, join(dir, "study", input.name)]));
    const outcome = await evaluator.evaluate(
      {
        study: "weights-only",
        trial: 0,
        x,
        recipe: space.toRecipe(x, plan.base),
        inputs: plan.settings.inputs,
        objective: plan.settings.objective,
      },
      new AbortController().signal,
      inputs,
    );
    expect(outcome.score).toBeLessThan(0);
    expect(outcome.scores?.["like-b"]?.scores).toHaveLength(1);
    expect(outcome.images).toEqual([]);
    expect(outcome.timings?.merge).toBeGreaterThan(0);
    const [merges] = (await readdir(work)).filter((f) => f.startsWith("merges-"));
    expect(await readdir(join(work, merges!))).toEqual([]); // released once scored
    await evaluator.close();
    expect((await readdir(work)).filter((f) => f.startsWith("merges-"))).toEqual([]);
  });

  it("refuses --in-flight or --log without --redis rather than ignoring them", async () => {
    const run = await runCli("automix", "run", join(dir, "any.yaml"), "--in-flight", "2");
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("--in-flight is for a study run through Redis");
  });
});
