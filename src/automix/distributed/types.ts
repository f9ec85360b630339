import { GyozaError } from "../../errors.js";
import * as z from "../../zod.js";
import { httpScorerSchema, onnxScorerSchema, studyImagesSchema, weightsScorerSchema } from "../study-file.js";
import { TALLIES } from "../tally.js";

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

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const MAX_DIMENSIONS = 10_000;
const MAX_INPUTS = 64;
/** Images per candidate at most (prompts × seeds): a job is untrusted data. */
export const MAX_JOB_IMAGES = 1000;

/** A file name the worker looks up in its --inputs folders: no folder part, never "." or "..". */
export function isPlainFileName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !/[/\\\0]/.test(name) && name !== "." && name !== "..";
}

const fileName = z.string().check(z.refine(isPlainFileName, "a plain file name (no folder)"));
const sha256 = z.string().check(z.regex(SHA256_HEX, "a sha256 (64 hex digits)"));
/** A scorer as the study file resolved it: its name, weight and tally are always there. */
const resolved = {
  name: z.string().check(z.minLength(1), z.maxLength(100)),
  weight: z.number(),
  tally: z.enum(TALLIES),
};

/**
 * A study's scorers as a job carries them: the study file's schemas (study-file.ts), with the
 * files they read named by file name + sha256 (inputs like the recipe's, verified before work
 * starts) and the HTTP scorer's URL limited to http(s) or the stand-in.
 */
const jobScorerSchema = z.discriminatedUnion("type", [
  z.extend(weightsScorerSchema, { ...resolved, target: fileName, target_sha256: sha256 }),
  z.extend(httpScorerSchema, {
    ...resolved,
    url: z
      .string()
      .check(
        z.refine(
          (url) => url === "stand-in" || /^https?:\/\/[^\s]+$/.test(url),
          "an http(s) URL or stand-in",
        ),
      ),
  }),
  z.extend(onnxScorerSchema, { ...resolved, model: fileName, model_sha256: sha256 }),
]);

/** The images every candidate renders: the study file's images section without backend and folder. */
const jobImagesSchema = z.extend(z.omit(studyImagesSchema, { backend: true, out: true }), {
  prompts: z.array(z.string().check(z.maxLength(10_000))).check(z.minLength(1), z.maxLength(MAX_JOB_IMAGES)),
  seeds: z.array(z.number().check(z.int())).check(z.minLength(1), z.maxLength(MAX_JOB_IMAGES)),
  width: z.optional(z.number().check(z.int(), z.positive(), z.maximum(16_384))),
  height: z.optional(z.number().check(z.int(), z.positive(), z.maximum(16_384))),
  steps: z.optional(z.number().check(z.int(), z.positive(), z.maximum(1000))),
});

export const studyObjectiveSchema = z.strictObject({
  kind: z.literal("study"),
  images: z.optional(jobImagesSchema),
  scorers: z.array(jobScorerSchema).check(z.minLength(1), z.maxLength(32)),
});

/**
 * A study file's objectives (issue #24): the worker merges the job's recipe, renders `images`
 * through its own backend (image scorers only) and scores with `scorers`, as `gyoza automix run`
 * does in-process.
 */
export type StudyObjectiveSpec = z.infer<typeof studyObjectiveSchema>;
export type JobScorerSpec = StudyObjectiveSpec["scorers"][number];

/** How a worker scores a candidate: synthetic (weight-space, no merge) or the study's own objectives. */
export type EvaluationObjective = WeightSpaceObjective | StudyObjectiveSpec;

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

/** What an evaluator found for one candidate (beyond the score: what a `study` job measured). */
export interface EvaluationOutcome {
  readonly score: number;
  /** Per objective: its raw scores and tally. */
  readonly scores?: Record<string, { scores: number[]; tally: number }>;
  /** The images rendered and scored (not kept: they stay on no disk). */
  readonly images?: readonly { prompt: string; seed: number }[];
  /** Seconds per phase (merge, generate, score, total). */
  readonly timings?: Record<string, number>;
  readonly autov3?: string;
  readonly recipeKey?: string;
}

/** What a worker reports for a finished evaluation (the job's return value). */
export interface EvaluationResult extends EvaluationOutcome {
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
    else if (typeof i.name !== "string" || !isPlainFileName(i.name)) bad("input name");
    else if (typeof i.sha256 !== "string" || !SHA256_HEX.test(i.sha256)) bad("input sha256");
  }
  const o = d.objective as Record<string, unknown> | null;
  if (typeof o !== "object" || o === null) return bad("objective");
  if (o.kind === "weight-space") {
    if (!isPoint(o.target)) bad("objective");
    return data as EvaluationJobData;
  }
  const parsed = studyObjectiveSchema.safeParse(o);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return bad(`objective (${issue.path.join(".") || "objective"}: ${issue.message})`);
  }
  checkStudyObjective(parsed.data, d.inputs as EvaluationInput[], bad);
  return { ...(data as EvaluationJobData), objective: parsed.data };
}

/** The files a study objective's scorers read, by file name and sha256. */
export function scorerFiles(objective: StudyObjectiveSpec): EvaluationInput[] {
  return objective.scorers.flatMap((scorer) =>
    scorer.type === "weights"
      ? [{ name: scorer.target, sha256: scorer.target_sha256 }]
      : scorer.type === "onnx"
        ? [{ name: scorer.model, sha256: scorer.model_sha256 }]
        : [],
  );
}

function checkStudyObjective(
  objective: StudyObjectiveSpec,
  inputs: readonly EvaluationInput[],
  bad: (what: string) => never,
): void {
  // every file a scorer reads is one of the inputs the worker verifies before it starts
  for (const file of scorerFiles(objective))
    if (!inputs.some((i) => i.name === file.name && i.sha256.toLowerCase() === file.sha256.toLowerCase()))
      bad(`objective (scorer file "${file.name}" is not among the job's inputs)`);
  const names = new Set(objective.scorers.map((s) => s.name));
  if (names.size !== objective.scorers.length) bad("objective (two scorers share a name)");
  const imageScorers = objective.scorers.some((s) => s.type !== "weights");
  if (imageScorers && !objective.images) bad("objective (an image scorer needs images)");
  if (objective.images && objective.images.prompts.length * objective.images.seeds.length > MAX_JOB_IMAGES)
    bad(`objective (more than ${MAX_JOB_IMAGES} images per candidate)`);
}

const resultDetailSchema = z.object({
  scores: z.optional(
    z.record(
      z.string().check(z.maxLength(100)),
      z.object({ scores: z.array(z.number()).check(z.maxLength(MAX_JOB_IMAGES)), tally: z.number() }),
    ),
  ),
  images: z.optional(
    z
      .array(z.object({ prompt: z.string().check(z.maxLength(10_000)), seed: z.number() }))
      .check(z.maxLength(MAX_JOB_IMAGES)),
  ),
  timings: z.optional(z.record(z.string().check(z.maxLength(40)), z.number())),
  autov3: z.optional(z.string().check(z.regex(/^[0-9a-f]{64}$/))),
  recipeKey: z.optional(z.string().check(z.maxLength(200))),
});

/**
 * A finished job's measurements beyond the score (a worker's EvaluationOutcome, read back from
 * Redis: untrusted like job data), or undefined when it reported none or a malformed one.
 */
export function parseResultDetail(value: unknown): z.infer<typeof resultDetailSchema> | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const parsed = resultDetailSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const { scores, images, timings, autov3, recipeKey } = parsed.data;
  if (!scores && !images && !timings && !autov3 && !recipeKey) return undefined;
  return {
    ...(scores ? { scores } : {}),
    ...(images ? { images } : {}),
    ...(timings ? { timings } : {}),
    ...(autov3 ? { autov3 } : {}),
    ...(recipeKey ? { recipeKey } : {}),
  };
}
