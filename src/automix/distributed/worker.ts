import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Job } from "bullmq";
import { defaultHashCacheDir, hashFiles } from "../../hash/index.js";
import type { Evaluator } from "./evaluate.js";
import { connectRedis, redactedRedisUrl } from "./redis.js";
import {
  EVALUATION_ERROR_MARK,
  EVALUATION_QUEUE,
  type EvaluationInput,
  type EvaluationOutcome,
  type EvaluationResult,
  INPUT_MISMATCH_MARK,
  parseEvaluationJobData,
} from "./types.js";

export interface EvaluationWorkerOptions {
  readonly redisUrl: string;
  readonly evaluator: Evaluator;
  /** Folders holding the input files, looked up by name. */
  readonly inputDirs: readonly string[];
  /** Shown in results and messages; default host:pid. */
  readonly name?: string;
  /** How long a job's lock lasts without renewal: a killed worker's job is taken over after about this. */
  readonly lockDurationMs?: number;
  /** How often workers look for stalled jobs (those whose worker died). */
  readonly stalledIntervalMs?: number;
  /** Where hashes are cached (default: the user's hash cache). */
  readonly hashCacheDir?: string;
  /** One line per event (job started, done, refused, Redis trouble). */
  readonly log?: (line: string) => void;
}

export interface EvaluationWorker {
  readonly name: string;
  /** Stops taking jobs and waits for the current one to finish (it is reported as usual). */
  close(): Promise<void>;
  /** Resolves once the worker is connected and taking jobs. */
  ready(): Promise<void>;
  /** Resolves once `close` has finished. */
  closed(): Promise<void>;
}

/** A refused study's jobs go back to the queue for this long, for other workers to take. */
const REFUSED_STUDY_DELAY_MS = 5_000;

/**
 * A BullMQ worker evaluating automix candidates, one at a time (one GPU each): checks it holds every
 * input by sha256 (refusing the study, with the file named, when one differs), evaluates, reports.
 */
export async function startEvaluationWorker(options: EvaluationWorkerOptions): Promise<EvaluationWorker> {
  const { DelayedError, UnrecoverableError, Worker } = await import("bullmq");
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const log = options.log ?? (() => {});
  const refused = new Map<string, string>();
  const verified = new Map<string, string>(); // `${name}\0${sha256}` already checked → its file
  const connection = await connectRedis(options.redisUrl);
  const lockDuration = options.lockDurationMs ?? 30_000;

  const processor = async (job: Job, token?: string): Promise<EvaluationResult> => {
    let data: ReturnType<typeof parseEvaluationJobData>;
    try {
      data = parseEvaluationJobData(job.data);
    } catch (error) {
      throw new UnrecoverableError((error as Error).message);
    }
    const refusal = refused.get(data.study);
    if (refusal !== undefined) {
      // leave it to workers that hold the study's inputs
      await job.moveToDelayed(Date.now() + REFUSED_STUDY_DELAY_MS, token);
      throw new DelayedError();
    }
    const paths = new Map<string, string>();
    const mismatch = await checkInputs(data.inputs, paths);
    if (mismatch !== undefined) {
      const message = `${INPUT_MISMATCH_MARK} worker ${name} refuses study ${data.study}: ${mismatch}`;
      refused.set(data.study, message);
      log(message);
      throw new UnrecoverableError(message);
    }
    log(`worker ${name}: study ${data.study} trial ${data.trial} started`);
    const started = performance.now();
    const controller = new AbortController();
    let outcome: EvaluationOutcome;
    try {
      outcome = await options.evaluator(data, controller.signal, paths);
    } catch (error) {
      log(`worker ${name}: study ${data.study} trial ${data.trial} failed: ${(error as Error).message}`);
      throw new Error(`${EVALUATION_ERROR_MARK} ${(error as Error).message}`);
    }
    const seconds = (performance.now() - started) / 1000;
    log(
      `worker ${name}: study ${data.study} trial ${data.trial} scored ${outcome.score} in ${seconds.toFixed(2)} s`,
    );
    return { ...outcome, worker: name, seconds };
  };

  /** Finds and verifies each input, filling `paths` (name → file); a mismatch is returned as a message. */
  async function checkInputs(
    inputs: readonly EvaluationInput[],
    paths: Map<string, string>,
  ): Promise<string | undefined> {
    for (const input of inputs) {
      const key = `${input.name}\0${input.sha256.toLowerCase()}`;
      const known = verified.get(key);
      if (known !== undefined) {
        paths.set(input.name, known);
        continue;
      }
      const path = options.inputDirs
        .map((dir) => join(dir, input.name))
        .find((candidate) => existsSync(candidate));
      if (path === undefined)
        return `input "${input.name}" is not in ${options.inputDirs.length ? options.inputDirs.join(", ") : "any --inputs folder"}`;
      const [result] = await hashFiles([path], {
        algorithms: ["sha256"],
        cacheDir: options.hashCacheDir ?? defaultHashCacheDir(),
      });
      const actual = result?.hashes.sha256?.toLowerCase();
      if (actual !== input.sha256.toLowerCase())
        return `input "${input.name}" (${path}) has sha256 ${actual}, the study expects ${input.sha256.toLowerCase()}`;
      verified.set(key, path);
      paths.set(input.name, path);
    }
    return undefined;
  }

  const worker = new Worker(EVALUATION_QUEUE, processor, {
    connection,
    concurrency: 1,
    lockDuration,
    stalledInterval: options.stalledIntervalMs ?? Math.max(1000, Math.floor(lockDuration / 2)),
    // a job whose worker died is tried again elsewhere; twice more before it counts as failed
    maxStalledCount: 2,
    name,
  });
  let lastError = "";
  worker.on("error", (error) => {
    const message = `worker ${name}: Redis at ${redactedRedisUrl(options.redisUrl)}: ${error.message}`;
    if (message !== lastError) log(message);
    lastError = message;
  });
  worker.on("ready", () => {
    lastError = "";
  });
  let closing: Promise<void> | undefined;
  let markClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  return {
    name,
    ready: () => worker.waitUntilReady().then(() => undefined),
    closed: () => closed,
    close() {
      closing ??= worker.close().then(() => {
        connection.disconnect();
        markClosed();
      });
      return closing;
    },
  };
}
