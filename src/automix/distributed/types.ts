import { GyozaError } from "../../errors.js";

/**
 * What travels through Redis when automix evaluates candidates on many GPU hosts (issue #24,
 * "Scale"): a job names the study and trial, carries the candidate as data (its unit-cube point and
 * the recipe it stands for) and the sha256 of every input file the worker must hold. Never weights:
 * each worker merges locally from its own copies, verified by hash before it takes the work.
 */

/** The one BullMQ queue every study's evaluations go through (studies are told apart by job id). */
export const EVALUATION_QUEUE = "gyoza-automix";

/** failedReason prefix for a worker whose inputs differ: the coordinator stops the study on it. */
export const INPUT_MISMATCH_MARK = "[input-mismatch]";

/** failedReason prefix for an error the evaluation itself threw (after its retries): the trial failed. */
export const EVALUATION_ERROR_MARK = "[evaluation]";

/** An input file the candidate's recipe merges from, as the study knows it. */
export interface EvaluationInput {
  /** The file name workers look for in their --inputs folders. */
  readonly name: string;
  /** SHA256, hex (either case). */
  readonly sha256: string;
}

/** A weight-space objective: no images, a score straight from the candidate's point (issue #24, scorer 3). */
export interface WeightSpaceObjective {
  readonly kind: "weight-space";
  /** The point to be close to, in the unit cube; the score is minus the squared distance. */
  readonly target: readonly number[];
}

/** How a worker scores a candidate. Image objectives (backends + scorers) plug in here as they land. */
export type EvaluationObjective = WeightSpaceObjective;

/** A BullMQ job's data: one evaluation. */
export interface EvaluationJobData {
  readonly study: string;
  readonly trial: number;
  /** The candidate's point in the search space's unit cube. */
  readonly x: readonly number[];
  /** The candidate's recipe as data (the search space's holes filled in), for workers that merge. */
  readonly recipe: unknown;
  readonly inputs: readonly EvaluationInput[];
  readonly objective: EvaluationObjective;
}

/** What a worker reports for a finished evaluation (the job's return value). */
export interface EvaluationResult {
  readonly score: number;
  /** The worker that evaluated it (`--name`, else host:pid). */
  readonly worker: string;
  readonly seconds: number;
}

/** Study ids: they become part of Redis job ids, so a short, plain alphabet. */
export const STUDY_ID_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * `${study}#${trial}`: re-enqueueing a trial is a no-op while its job exists. (BullMQ refuses ":" in
 * custom job ids, since Redis keys are built with it.)
 */
export function evaluationJobId(study: string, trial: number): string {
  return `${study}#${trial}`;
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const MAX_DIMENSIONS = 10_000;
const MAX_INPUTS = 64;

/** Checks a job's data as read from Redis (untrusted: any client of that Redis can add jobs). */
export function parseEvaluationJobData(data: unknown): EvaluationJobData {
  const bad = (what: string): never => {
    throw new GyozaError("format", `an evaluation job's ${what} is malformed`);
  };
  if (typeof data !== "object" || data === null) return bad("data");
  const d = data as Record<string, unknown>;
  if (typeof d.study !== "string" || !STUDY_ID_PATTERN.test(d.study)) bad("study id");
  if (!Number.isSafeInteger(d.trial) || (d.trial as number) < 0) bad("trial number");
  const isPoint = (v: unknown): v is number[] =>
    Array.isArray(v) &&
    v.length > 0 &&
    v.length <= MAX_DIMENSIONS &&
    v.every((n) => typeof n === "number" && Number.isFinite(n));
  if (!isPoint(d.x)) bad("candidate point");
  if (!Array.isArray(d.inputs) || d.inputs.length > MAX_INPUTS) bad("input list");
  for (const input of d.inputs as unknown[]) {
    const i = input as Record<string, unknown> | null;
    if (typeof i !== "object" || i === null) bad("input list");
    else if (
      typeof i.name !== "string" ||
      i.name.length === 0 ||
      i.name.length > 255 ||
      /[/\\\0]/.test(i.name) ||
      i.name === "." ||
      i.name === ".."
    )
      bad("input name");
    else if (typeof i.sha256 !== "string" || !SHA256_HEX.test(i.sha256)) bad("input sha256");
  }
  const o = d.objective as Record<string, unknown> | null;
  if (typeof o !== "object" || o === null || o.kind !== "weight-space" || !isPoint(o.target))
    bad("objective");
  return data as EvaluationJobData;
}
