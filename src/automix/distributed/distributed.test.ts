import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openLibrary } from "../../library/open-library.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";
import { studyReport } from "../study-report.js";
import { createStudy, getStudy, listTrials } from "../study-store.js";
import { type DistributedStudySettings, runDistributedStudy } from "./coordinator.js";
import { standInEvaluator } from "./evaluate.js";
import { RedisTestServer } from "./redis-test-server.js";
import { StudyLog } from "./study-log.js";
import { type EvaluationWorker, startEvaluationWorker } from "./worker.js";

// Fault tests against a real redis-server of their own (random port, temp dir). Skipped when
// redis-server is not installed, unless GYOZA_REQUIRE_REDIS=1 (CI sets it), where they fail instead.
const haveRedis = RedisTestServer.available();
const requireRedis = process.env.GYOZA_REQUIRE_REDIS === "1";
if (!haveRedis && !requireRedis)
  console.warn(
    "distributed automix tests skipped: redis-server is not installed (apt install redis-server; GYOZA_REQUIRE_REDIS=1 makes this a failure)",
  );

const CHILD = join(import.meta.dirname, "fault-child.ts");
const FAST = { lockDurationMs: 1000, stalledIntervalMs: 300 };

function settings(
  budget: number,
  inFlight: number,
  inputs: DistributedStudySettings["inputs"] = [],
): DistributedStudySettings {
  return {
    optimizer: "random",
    seed: 7,
    dimensions: 4,
    budget,
    inFlight,
    recipe: { steps: [{ method: "weighted_sum", alpha: "?" }] },
    inputs,
    objective: { kind: "weight-space", target: [0.2, 0.4, 0.6, 0.8] },
    attempts: 3,
    backoffMs: 200,
  };
}

/** Each trial recorded once: one row per trial number 0..budget-1, one tell per trial. */
/** "trial 3 (worker w1): <error>; …" for a study's failed trials, as the log recorded them. */
function failedTrials(logPath: string, study: string): string {
  const log = new StudyLog(logPath);
  try {
    const failed = log.trials(study).filter((trial) => trial.state === "failed");
    return failed.map((t) => `trial ${t.number} (worker ${t.worker}): ${t.error}`).join("; ");
  } finally {
    log.close();
  }
}

function expectEachTrialOnce(logPath: string, study: string, budget: number): void {
  const log = new StudyLog(logPath);
  try {
    const trials = log.trials(study);
    expect(trials.map((trial) => trial.number)).toEqual([...Array(budget).keys()]);
    expect(trials.every((trial) => trial.state === "done" && typeof trial.score === "number")).toBe(true);
    const told = log
      .events(study)
      .flatMap((event) => (event.kind === "tell" ? event.results.map((r) => r.id) : []));
    expect(told.sort((a, b) => a - b)).toEqual([...Array(budget).keys()]);
    const asked = log.events(study).reduce((sum, event) => sum + (event.kind === "ask" ? event.count : 0), 0);
    expect(asked).toBe(budget);
  } finally {
    log.close();
  }
}

interface Child {
  process: ChildProcess;
  stderr: () => string;
  /** Resolves when stderr has a line matching `pattern`. */
  waitFor: (pattern: RegExp) => Promise<void>;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
function startChild(role: "worker" | "coordinator", options: object): Child {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, role, JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const waiter of [...waiters])
      if (waiter.pattern.test(stderr)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    process: child,
    stderr: () => stderr,
    waitFor: (pattern) =>
      new Promise<void>((resolve, reject) => {
        if (pattern.test(stderr)) return resolve();
        waiters.push({ pattern, resolve });
        void exited.then((code) => reject(new Error(`child exited (${code}) before ${pattern}:\n${stderr}`)));
      }),
    exited,
  };
}

async function killChild(child: Child): Promise<void> {
  child.process.kill("SIGKILL");
  await child.exited;
}

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function doneCount(logPath: string, study: string): number {
  const log = new StudyLog(logPath);
  try {
    return log.trials(study).filter((trial) => trial.state === "done").length;
  } finally {
    log.close();
  }
}

describe.skipIf(!haveRedis && !requireRedis)("distributed automix on a real Redis", () => {
  let dir = "";
  useTempDirWithHashCache("gyoza-distributed-", (path) => (dir = path), { each: true });
  let redis: RedisTestServer | undefined;
  const workers: EvaluationWorker[] = [];
  beforeEach(() => {
    workers.length = 0;
  });
  afterEach(async () => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    if (redis && !redis.running) await redis.restart(); // a worker closes cleanly only with Redis up
    await Promise.all(workers.map((worker) => worker.close()));
    await redis?.kill();
    redis = undefined;
  });
  const inProcessWorker = async (name: string, delayMs: number, inputDirs: string[] = []) => {
    const worker = await startEvaluationWorker({
      redisUrl: (redis as RedisTestServer).url,
      evaluator: standInEvaluator(delayMs),
      inputDirs,
      name,
      hashCacheDir: join(dir, "cache"),
      ...FAST,
    });
    workers.push(worker);
    await worker.ready();
    return worker;
  };

  it("a worker killed mid-job has its trial taken over by another worker, and the trial is recorded once", async () => {
    redis = await RedisTestServer.start(dir);
    const logPath = join(dir, "study.db");
    const doomed = startChild("worker", { redisUrl: redis.url, name: "doomed", delayMs: 20_000, ...FAST });
    await doomed.waitFor(/ready/);
    const study = runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      study: "kill-worker",
      settings: settings(4, 2),
      sweepMs: 300,
    });
    await doomed.waitFor(/trial \d+ started/);
    const taken = Number(/trial (\d+) started/.exec(doomed.stderr())?.[1]);
    await killChild(doomed);
    await inProcessWorker("survivor", 50);
    const summary = await study;
    expect(summary).toMatchObject({ trials: 4, failed: 0 });
    expectEachTrialOnce(logPath, "kill-worker", 4);
    const log = new StudyLog(logPath);
    expect(log.trials("kill-worker")[taken]?.worker).toBe("survivor");
    log.close();
  }, 60_000);

  it("a coordinator killed mid-study resumes with no lost or duplicated trial, collecting results finished while it was away, each trial in the library once with its worker", async () => {
    redis = await RedisTestServer.start(dir);
    const logPath = join(dir, "study.db");
    const library = { path: join(dir, "library.db") };
    await inProcessWorker("w1", 150);
    await inProcessWorker("w2", 150);
    const coordinator = startChild("coordinator", {
      redisUrl: redis.url,
      logPath,
      library,
      study: "kill-coordinator",
      settings: settings(10, 3),
      sweepMs: 300,
    });
    await until(() => doneCount(logPath, "kill-coordinator") >= 3);
    await killChild(coordinator);
    const before = doneCount(logPath, "kill-coordinator");
    expect(before).toBeLessThan(10);
    await new Promise((resolve) => setTimeout(resolve, 500)); // in-flight jobs finish with nobody listening
    const summary = await runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      library,
      study: "kill-coordinator",
      sweepMs: 300,
    });
    expect(summary).toMatchObject({ trials: 10, failed: 0 });
    expectEachTrialOnce(logPath, "kill-coordinator", 10);

    const db = openLibrary(library.path);
    try {
      const study = getStudy(db, "kill-coordinator");
      expect(study.status).toBe("finished");
      expect(study.settings).toMatchObject({ distributed: true, budget: 10, inFlight: 3 });
      const trials = listTrials(db, study.id);
      expect(trials.map((trial) => trial.number)).toEqual([...Array(10).keys()]);
      const log = new StudyLog(logPath);
      const logged = log.trials("kill-coordinator");
      log.close();
      for (const trial of trials) {
        expect(trial.state).toBe("done");
        expect(["w1", "w2"]).toContain(trial.worker);
        expect(trial.score).toBe(logged[trial.number]?.score);
        expect(trial.x).toEqual(logged[trial.number]?.x);
        expect(trial.timings?.total).toBeGreaterThan(0);
      }
      const report = studyReport(trials, ["a", "b", "c", "d"]);
      expect(report.best[0]?.score).toBe(summary.best?.score);
    } finally {
      db.close();
    }
  }, 60_000);

  it("copies into the library, on the next start, trials the log recorded but the library lost (a crash between the two writes), without doubling any", async () => {
    redis = await RedisTestServer.start(dir);
    const logPath = join(dir, "study.db");
    const library = { path: join(dir, "library.db") };
    await inProcessWorker("w1", 20);
    await runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      library,
      study: "gap",
      settings: settings(5, 2),
      sweepMs: 300,
    });
    const db = openLibrary(library.path);
    try {
      const study = getStudy(db, "gap");
      // as if the coordinator died after the log's write and before the library's
      db.prepare("DELETE FROM automix_trials WHERE study_id = ? AND number IN (1, 3)").run(study.id);
      expect(listTrials(db, study.id).map((trial) => trial.number)).toEqual([0, 2, 4]);
      await runDistributedStudy({ redisUrl: redis.url, logPath, library, study: "gap", sweepMs: 300 });
      const trials = listTrials(db, study.id);
      expect(trials.map((trial) => trial.number)).toEqual([0, 1, 2, 3, 4]);
      expect(trials.every((trial) => trial.state === "done" && trial.worker === "w1")).toBe(true);
      expect(getStudy(db, "gap").status).toBe("finished");
    } finally {
      db.close();
    }
  }, 60_000);

  it("refuses to mirror into a library study of the same name that was run in-process", async () => {
    redis = await RedisTestServer.start(dir);
    const library = { path: join(dir, "library.db") };
    const db = openLibrary(library.path);
    createStudy(db, {
      name: "taken",
      spaceYaml: "",
      baseRecipe: "",
      optimizer: "random",
      seed: 1,
      settings: { budget: 3 },
    });
    db.close();
    await expect(
      runDistributedStudy({
        redisUrl: redis.url,
        logPath: join(dir, "study.db"),
        library,
        study: "taken",
        settings: settings(3, 1),
        sweepMs: 300,
      }),
    ).rejects.toThrow(/study "taken" was run in-process, not through Redis/);
  }, 60_000);

  it("a study carries on over a Redis restart, and stops with a resume message when Redis stays away, then resumes cleanly", async () => {
    redis = await RedisTestServer.start(dir, { persistent: true });
    const server = redis;
    const logPath = join(dir, "study.db");
    await inProcessWorker("w1", 100);
    await inProcessWorker("w2", 100);
    let recorded = 0;
    let restarted: Promise<void> | undefined;
    const carryOn = await runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      study: "restart",
      settings: settings(8, 2),
      sweepMs: 300,
      redisTimeoutMs: 15_000,
      onTrial: () => {
        if (++recorded === 3) restarted = server.kill().then(() => server.restart());
      },
    });
    await restarted;
    expect(carryOn).toMatchObject({ trials: 8, failed: 0 });
    expectEachTrialOnce(logPath, "restart", 8);

    recorded = 0;
    let killed: Promise<void> | undefined;
    const stopped = runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      study: "outage",
      settings: settings(6, 2),
      sweepMs: 300,
      redisTimeoutMs: 1500,
      onTrial: () => {
        if (++recorded === 2) killed = server.kill();
      },
    });
    await expect(stopped).rejects.toThrow(
      new RegExp(`lost Redis at redis://127\\.0\\.0\\.1:${redis.port}.*study outage stopped`),
    );
    await killed;
    await redis.restart();
    const resumed = await runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      study: "outage",
      sweepMs: 300,
    });
    // a failed trial here has flaked twice in CI: say which and why when it does
    expect(resumed, failedTrials(logPath, "outage")).toMatchObject({ trials: 6, failed: 0 });
    expectEachTrialOnce(logPath, "outage", 6);
  }, 60_000);

  it("a worker whose input file differs refuses the study, naming the file, and the study resumes once a worker has the right one", async () => {
    redis = await RedisTestServer.start(dir);
    const logPath = join(dir, "study.db");
    const right = join(dir, "right");
    const wrong = join(dir, "wrong");
    await mkdir(right);
    await mkdir(wrong);
    const bytes = Buffer.from("the study's base model");
    await writeFile(join(right, "base.safetensors"), bytes);
    await writeFile(join(wrong, "base.safetensors"), Buffer.from("a different file of the same name"));
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const stranger = await inProcessWorker("stranger", 50, [wrong]);
    const refused = runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      study: "hashes",
      settings: settings(3, 1, [{ name: "base.safetensors", sha256 }]),
      sweepMs: 300,
    });
    await expect(refused).rejects.toThrow(
      /worker stranger refuses study hashes: input "base\.safetensors" .*wrong.* the study expects/,
    );
    await expect(refused).rejects.toThrow(sha256);
    await stranger.close();
    await inProcessWorker("keeper", 50, [right]);
    const summary = await runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      study: "hashes",
      sweepMs: 300,
    });
    expect(summary).toMatchObject({ trials: 3, failed: 0 });
    expectEachTrialOnce(logPath, "hashes", 3);
  }, 60_000);
  it("a worker stopped with SIGTERM mid-job finishes and reports that job before it exits", async () => {
    redis = await RedisTestServer.start(dir);
    const logPath = join(dir, "study.db");
    const leaving = startChild("worker", { redisUrl: redis.url, name: "leaving", delayMs: 1500, ...FAST });
    await leaving.waitFor(/ready/);
    const study = runDistributedStudy({
      redisUrl: redis.url,
      logPath,
      study: "sigterm",
      settings: settings(3, 1),
      sweepMs: 300,
    });
    await leaving.waitFor(/trial 0 started/);
    leaving.process.kill("SIGTERM");
    expect(await leaving.exited).toBe(0);
    expect(leaving.stderr()).toMatch(/trial 0 scored/);
    await inProcessWorker("staying", 50);
    expect(await study).toMatchObject({ trials: 3, failed: 0 });
    expectEachTrialOnce(logPath, "sigterm", 3);
    const log = new StudyLog(logPath);
    expect(log.trials("sigterm")[0]?.worker).toBe("leaving");
    log.close();
  }, 60_000);
});
