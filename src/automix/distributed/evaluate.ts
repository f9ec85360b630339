import { GyozaError } from "../../errors.js";
import type { EvaluationJobData, EvaluationOutcome, WeightSpaceObjective } from "./types.js";

/**
 * Scores one candidate: what a worker runs between verifying its inputs and reporting. `inputs`
 * maps each of the job's input file names to the worker's verified copy of it.
 */
export type Evaluator = (
  job: EvaluationJobData,
  signal: AbortSignal,
  inputs: ReadonlyMap<string, string>,
) => Promise<EvaluationOutcome>;

/**
 * The stand-in evaluator: weight-space objectives only, after a fixed delay standing in for a
 * backend's generation time (the throughput bench's and the fault tests' worker).
 */
export function standInEvaluator(delayMs: number): Evaluator {
  return async (job, signal) => {
    if (job.objective.kind !== "weight-space")
      throw new GyozaError("usage", "the stand-in evaluator scores weight-space objectives only");
    if (delayMs > 0) await sleep(delayMs, signal);
    return { score: scoreWeightSpace(job.objective, job.x) };
  };
}

/** Minus the squared distance from the target (0 at the optimum). */
export function scoreWeightSpace(objective: WeightSpaceObjective, x: readonly number[]): number {
  if (objective.target.length !== x.length)
    throw new GyozaError(
      "usage",
      `the weight-space target has ${objective.target.length} values, the candidate ${x.length}`,
    );
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += ((x[i] as number) - (objective.target[i] as number)) ** 2;
  return -sum;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
