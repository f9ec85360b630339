import type { Job, Queue, QueueEvents } from "bullmq";
import { GyozaError } from "../../errors.js";
import { createOptimizer, replayOptimizer } from "../optimizers/create-optimizer.js";
import type { Candidate, OptimizerName } from "../optimizers/optimizer.js";
import { LibraryMirror, type LibraryTarget } from "./library-mirror.js";
import { connectRedis, redactedRedisUrl } from "./redis.js";
import { StudyLog, type TrialDetail } from "./study-log.js";
import {
  EVALUATION_ERROR_MARK,
  EVALUATION_QUEUE,
  type EvaluationInput,
  type EvaluationJobData,
  type EvaluationObjective,
  evaluationJobId,
  INPUT_MISMATCH_MARK,
  parseResultDetail,
  STUDY_ID_PATTERN,
} from "./types.js";

/** A distributed study's settings, stored with it: `resume` needs only the study id. */
export interface DistributedStudySettings {
  readonly optimizer: OptimizerName;
  readonly seed: number;
  readonly dimensions: number;
  /** Trials in all. */
  readonly budget: number;
  /** Jobs in flight at most (the optimizer is asked for batches up to this). */
  readonly inFlight: number;
  readonly recipe: unknown;
  readonly inputs: readonly EvaluationInput[];
  readonly objective: EvaluationObjective;
  /** Tries per trial (the first included) before it counts as failed. */
  readonly attempts?: number;
  /** First retry's delay; doubles each time. */
  readonly backoffMs?: number;
}

export interface DistributedStudyOptions {
  readonly redisUrl: string;
  /** The study log file (SQLite). */
  readonly logPath: string;
  readonly study: string;
  /** Required for a new study; for an existing one, omitted (resume) or equal to what is stored. */
  readonly settings?: DistributedStudySettings;
  /**
   * A library database to record the study's trials in as well (library-mirror.ts), under the study
   * id as its name, for `automix show` / `best` and the web app.
   */
  readonly library?: LibraryTarget;
  /**
   * The recipe a candidate stands for (a `study` objective: the search space's holes filled in at
   * its point), sent in its job; default the settings' recipe. A point it cannot make a recipe of
   * (it throws) is a failed trial, as in-process.
   */
  readonly candidateRecipe?: (x: readonly number[]) => unknown;
  /** How often in-flight jobs are checked besides completion events (and lost ones enqueued again). */
  readonly sweepMs?: number;
  /** Redis unreachable this long → the study stops with a message (resume continues it). */
  readonly redisTimeoutMs?: number;
  readonly onTrial?: (
    trial: number,
    score: number,
    worker: string | undefined,
    detail: TrialDetail | undefined,
  ) => void;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** Times a trial whose job failed for a reason other than its evaluation is run again. */
const MAX_INFRA_RETRIES = 3;

export interface DistributedStudySummary {
  readonly study: string;
  readonly trials: number;
  readonly failed: number;
  readonly best: { trial: number; score: number } | undefined;
}

/**
 * Runs (or resumes) a study whose candidates are evaluated by `gyoza worker` processes through
 * BullMQ: asks the optimizer for batches up to the in-flight limit, enqueues one job per trial
 * (job id study#trial, so enqueueing again is a no-op), and records each result once, in the order
 * results arrive. Safe to kill at any point: the log holds every ask before its jobs exist, and a
 * resume picks up jobs that finished while no coordinator was listening.
 */
export async function runDistributedStudy(
  options: DistributedStudyOptions,
): Promise<DistributedStudySummary> {
  const { study } = options;
  if (!STUDY_ID_PATTERN.test(study))
    throw new GyozaError("usage", `"${study}" is not a usable study id`, {
      fix: "use 1-100 letters, digits, dots, dashes or underscores",
    });
  const log = options.log ?? (() => {});
  const redisName = redactedRedisUrl(options.redisUrl);
  const sweepMs = options.sweepMs ?? 2000;
  const redisTimeoutMs = options.redisTimeoutMs ?? 60_000;
  const { Queue, QueueEvents } = await import("bullmq");
  const connection = await connectRedis(options.redisUrl);
  const eventsConnection = await connectRedis(options.redisUrl);
  const studyLog = new StudyLog(options.logPath);
  let queue: Queue | undefined;
  let events: QueueEvents | undefined;
  let library: LibraryMirror | undefined;
  let finished = false;
  try {
    const settings = studySettings(studyLog, study, options.settings);
    if (options.library !== undefined) {
      library = new LibraryMirror(options.library, study, settings);
      // trials the log holds but the library may not (a crash between the two writes)
      for (const row of studyLog.trials(study)) library.record(row);
    }
    const optimizer = createOptimizer(
      settings.optimizer,
      { dimensions: settings.dimensions },
      { seed: settings.seed, budget: settings.budget, batch: settings.inFlight },
    );
    const inFlight = new Map<number, Candidate>();
    const infraRetries = new Map<number, number>();
    for (const candidate of replayOptimizer(optimizer, studyLog.events(study)))
      inFlight.set(candidate.id, candidate);
    let asked = studyLog.trials(study).length;

    queue = new Queue(EVALUATION_QUEUE, { connection });
    events = new QueueEvents(EVALUATION_QUEUE, { connection: eventsConnection });
    let lastRedisError = "";
    const onRedisError = (error: Error) => {
      if (error.message !== lastRedisError) log(`Redis at ${redisName}: ${error.message}`);
      lastRedisError = error.message;
    };
    queue.on("error", onRedisError);
    events.on("error", onRedisError);

    // completion events only wake the loop; the job's state in Redis is what counts
    const woken = new Set<number>();
    let wake: (() => void) | undefined;
    const prefix = `${study}#`;
    const onFinished = ({ jobId }: { jobId: string }) => {
      if (!jobId.startsWith(prefix)) return;
      woken.add(Number(jobId.slice(prefix.length)));
      wake?.();
    };
    events.on("completed", onFinished);
    events.on("failed", onFinished);

    const bounded = <T>(what: string, promise: Promise<T>): Promise<T> =>
      withTimeout(
        promise,
        redisTimeoutMs,
        () =>
          new GyozaError(
            "network",
            `lost Redis at ${redisName} for ${Math.round(redisTimeoutMs / 1000)} s while ${what}; study ${study} stopped`,
            {
              fix: `start Redis again (or check the URL), then resume study ${study}: finished trials are kept and none runs twice`,
            },
          ),
      );

    if (settings.objective.kind === "study" && options.candidateRecipe === undefined)
      throw new GyozaError("usage", `study ${study} needs each candidate's recipe (candidateRecipe)`);
    const jobData = (candidate: Candidate): EvaluationJobData => ({
      study,
      trial: candidate.id,
      x: candidate.x,
      recipe: options.candidateRecipe ? options.candidateRecipe(candidate.x) : settings.recipe,
      inputs: settings.inputs,
      objective: settings.objective,
    });
    /** Enqueues a candidate's job; a point that makes no recipe is recorded as a failed trial instead. */
    const enqueue = async (candidate: Candidate): Promise<void> => {
      let data: EvaluationJobData;
      try {
        data = jobData(candidate);
      } catch (error) {
        finish(candidate.id, {
          score: Number.NEGATIVE_INFINITY,
          error: `no recipe for this point: ${(error as Error).message}`.slice(0, 2000),
        });
        return;
      }
      await (queue as Queue).add("evaluate", data, {
        jobId: evaluationJobId(study, candidate.id),
        attempts: settings.attempts ?? 3,
        backoff: { type: "exponential", delay: settings.backoffMs ?? 1000 },
        removeOnComplete: false,
        removeOnFail: false,
      });
    };

    /** Looks at one in-flight trial's job: records it when finished, enqueues it when Redis lost it. */
    const check = async (trial: number): Promise<void> => {
      const candidate = inFlight.get(trial);
      if (!candidate) return;
      const id = evaluationJobId(study, trial);
      const seen: Job | undefined = await queue?.getJob(id);
      if (!seen) {
        await enqueue(candidate);
        return;
      }
      const state = await seen.getState();
      // the job may have finished between reading it and its state: read a finished one again, so
      // its return value (or failure reason) is the one it finished with, not the null of before
      const job = state === "completed" || state === "failed" ? ((await queue?.getJob(id)) ?? seen) : seen;
      if (state === "completed") {
        const result = job.returnvalue as { score?: unknown; worker?: unknown; seconds?: unknown } | null;
        const score = typeof result?.score === "number" ? result.score : Number.NaN;
        const worker = typeof result?.worker === "string" ? result.worker.slice(0, 200) : undefined;
        const seconds = typeof result?.seconds === "number" ? result.seconds : undefined;
        const detail = parseResultDetail(result);
        finish(
          trial,
          Number.isFinite(score)
            ? { score, worker, seconds, ...(detail ? { detail } : {}) }
            : { score: Number.NEGATIVE_INFINITY, worker, error: "the worker reported no finite score" },
        );
        await job.remove().catch(() => {});
      } else if (state === "failed") {
        const reason = job.failedReason ?? "failed";
        if (reason.startsWith(INPUT_MISMATCH_MARK))
          throw new GyozaError("hash-mismatch", reason.slice(INPUT_MISMATCH_MARK.length).trim(), {
            fix: `give every worker the study's input files (--inputs), or stop the worker that differs; then resume study ${study} (the refused trial runs again)`,
          });
        if (!reason.startsWith(EVALUATION_ERROR_MARK)) {
          // not the candidate's fault (its worker died too often, Redis lost a lock): run it again
          const retries = (infraRetries.get(trial) ?? 0) + 1;
          infraRetries.set(trial, retries);
          if (retries <= MAX_INFRA_RETRIES) {
            log(`trial ${trial} failed outside its evaluation (${reason}); running it again`);
            await job.retry("failed");
            return;
          }
        }
        finish(trial, { score: Number.NEGATIVE_INFINITY, error: reason.slice(0, 2000) });
        await job.remove().catch(() => {});
      }
    };
    const finish = (
      trial: number,
      outcome: { score: number; worker?: string; seconds?: number; error?: string; detail?: TrialDetail },
    ) => {
      const candidate = inFlight.get(trial) as Candidate;
      inFlight.delete(trial);
      if (!studyLog.recordOutcome(study, trial, outcome)) return;
      if (library) {
        const row = studyLog.trials(study).find((r) => r.number === trial);
        if (row) library.record(row);
      }
      optimizer.tell([{ candidate, score: outcome.score }]);
      options.onTrial?.(trial, outcome.score, outcome.worker, outcome.detail);
    };

    // resume: a pending trial's job may have finished, failed for good (retried now) or vanished
    await bounded("waiting for Redis", queue.waitUntilReady());
    await bounded("waiting for Redis", events.waitUntilReady());
    for (const trial of [...inFlight.keys()]) {
      const job = await bounded("resuming", queue.getJob(evaluationJobId(study, trial)));
      if (job && (await bounded("resuming", job.getState())) === "failed") {
        if ((job.failedReason ?? "").startsWith(INPUT_MISMATCH_MARK))
          await bounded("resuming", job.retry("failed"));
      }
      await bounded("resuming", check(trial));
    }

    let lastSweep = Date.now();
    for (;;) {
      if (options.signal?.aborted)
        throw new GyozaError("interrupted", `study ${study} stopped; resume continues it`, {
          cause: options.signal.reason,
        });
      const want = Math.min(settings.inFlight - inFlight.size, settings.budget - asked);
      if (want > 0 && !optimizer.done?.()) {
        const candidates = optimizer.ask(want);
        if (candidates.length > 0) {
          studyLog.recordAsk(study, want, candidates);
          asked += candidates.length;
          for (const candidate of candidates) inFlight.set(candidate.id, candidate);
          for (const candidate of candidates) await bounded("enqueueing", enqueue(candidate));
        }
      }
      if (inFlight.size === 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, sweepMs - (Date.now() - lastSweep)));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
        if (woken.size > 0) wake();
      });
      wake = undefined;
      const due = Date.now() - lastSweep >= sweepMs;
      const trials = due ? [...inFlight.keys()] : [...woken].filter((trial) => inFlight.has(trial));
      woken.clear();
      if (due) lastSweep = Date.now();
      for (const trial of trials) await bounded("waiting for results", check(trial));
    }
    const rows = studyLog.trials(study);
    let best: { trial: number; score: number } | undefined;
    for (const row of rows)
      if (row.score !== null && (best === undefined || row.score > best.score))
        best = { trial: row.number, score: row.score };
    finished = true;
    return { study, trials: rows.length, failed: rows.filter((row) => row.state === "failed").length, best };
  } finally {
    if (library) {
      library.status(finished ? "finished" : "stopped");
      library.close();
    }
    // with Redis gone, close() would wait for it forever: bounded, then the sockets are dropped
    await withTimeout(
      Promise.allSettled([events?.close(), queue?.close()]),
      2000,
      () => new Error("close"),
    ).catch(() => {});
    connection.disconnect();
    eventsConnection.disconnect();
    studyLog.close();
  }
}

function studySettings(
  studyLog: StudyLog,
  study: string,
  given: DistributedStudySettings | undefined,
): DistributedStudySettings {
  const stored = studyLog.settings(study) as DistributedStudySettings | undefined;
  if (stored === undefined) {
    if (given === undefined)
      throw new GyozaError("usage", `there is no study ${study} in ${studyLog.path}`, {
        fix: "start it with its settings first",
      });
    if (!Number.isSafeInteger(given.budget) || given.budget < 1)
      throw new GyozaError("usage", "a study needs a budget of at least one trial");
    if (!Number.isSafeInteger(given.inFlight) || given.inFlight < 1)
      throw new GyozaError("usage", "a study needs at least one job in flight");
    studyLog.create(study, given);
    return given;
  }
  if (given !== undefined && JSON.stringify(given) !== JSON.stringify(stored))
    throw new GyozaError("usage", `study ${study} exists with other settings`, {
      fix: "resume it without settings, or pick a new study id",
    });
  return stored;
}

function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(error()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
