/**
 * The throughput bench's synthetic mode (`--mode synthetic`): weight-space jobs that only sleep
 * `delayMs` (the stand-in evaluator), N BullMQ workers in this process. What it measures is the
 * queue alone (enqueue, fetch, lock, completion event, the study log's fsync'd write): no merge, no
 * image, no scorer. One event loop carries all the workers, since they only sleep.
 */
import { join } from "node:path";
import { runDistributedStudy } from "../src/automix/distributed/coordinator.js";
import { standInEvaluator } from "../src/automix/distributed/evaluate.js";
import { startEvaluationWorker } from "../src/automix/distributed/worker.js";

export interface SyntheticRun {
  readonly redisUrl: string;
  /** A folder for the study log. */
  readonly dir: string;
  readonly workers: number;
  readonly trials: number;
  readonly delayMs: number;
  readonly onTrial: (done: number) => void;
}

/** Studies run so far: each gets a name of its own, so the same N twice does not resume the first. */
let runs = 0;

/** Runs one 26-dimension random study with `workers` sleeping workers; resolves to its wall seconds. */
export async function runSynthetic(run: SyntheticRun): Promise<number> {
  const workers = await Promise.all(
    Array.from({ length: run.workers }, (_, i) =>
      startEvaluationWorker({
        redisUrl: run.redisUrl,
        evaluator: standInEvaluator(run.delayMs),
        inputDirs: [],
        name: `bench-${run.workers}-${i}`,
      }),
    ),
  );
  try {
    await Promise.all(workers.map((worker) => worker.ready()));
    let done = 0;
    const started = performance.now();
    await runDistributedStudy({
      redisUrl: run.redisUrl,
      logPath: join(run.dir, "study.db"),
      study: `bench-r${++runs}-n${run.workers}`,
      settings: {
        optimizer: "random",
        seed: 1,
        dimensions: 26,
        budget: run.trials,
        inFlight: run.workers,
        recipe: {},
        inputs: [],
        objective: { kind: "weight-space", target: Array(26).fill(0.5) },
      },
      sweepMs: 1000,
      onTrial: () => run.onTrial(++done),
    });
    return (performance.now() - started) / 1000;
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
  }
}
