import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseDocument } from "yaml";
import { GyozaError } from "../errors.js";
import { formatPath } from "../recipe/index.js";
import * as z from "../zod.js";
import { DEFAULT_OPTIMIZER, OPTIMIZER_NAMES, type OptimizerName } from "./optimizers/optimizer.js";
import { TALLIES } from "./tally.js";

/**
 * A study file (`automix-study: 1`, src/automix/SCORERS.md has the scorers' part): the base
 * recipe, the search space, the optimizer and its seed, the budget, the images (for image scorers)
 * and the scorers with their weights. Paths are relative to the study file; `resolveStudyFile`
 * makes them absolute, and that resolved form is what the library stores, so `automix resume NAME`
 * needs no file.
 */
export const STUDY_FILE_VERSION = 1;
export const MAX_STUDY_FILE_BYTES = 100_000;

/** Scorer schemas, exported for distributed jobs (distributed/types.ts builds its scorer specs from them). */
export const weightsScorerSchema = z.strictObject({
  type: z.literal("weights"),
  name: z.optional(z.string().check(z.minLength(1))),
  weight: z.optional(z.number()),
  tally: z.optional(z.enum(TALLIES)),
  /** The model the candidate should be like. */
  target: z.string().check(z.minLength(1)),
  blocks: z.optional(z.array(z.string().check(z.minLength(1)))),
  samples: z.optional(z.number().check(z.int(), z.positive())),
});

export const httpScorerSchema = z.strictObject({
  type: z.literal("http"),
  name: z.optional(z.string().check(z.minLength(1))),
  weight: z.optional(z.number()),
  tally: z.optional(z.enum(TALLIES)),
  /** http(s) URL, or "stand-in": gyoza's stand-in scorer (brightness), started for the run (demo, tests). */
  url: z.string().check(z.minLength(1)),
  timeout: z.optional(z.number().check(z.positive())),
  retries: z.optional(z.number().check(z.int(), z.nonnegative())),
  headers: z.optional(z.record(z.string(), z.string())),
});

export const onnxScorerSchema = z.strictObject({
  type: z.literal("onnx"),
  name: z.optional(z.string().check(z.minLength(1))),
  weight: z.optional(z.number()),
  tally: z.optional(z.enum(TALLIES)),
  /** The model file (image tensor in, one score per image out), a local path. */
  model: z.string().check(z.minLength(1)),
  size: z.optional(z.number().check(z.int(), z.positive())),
  normalize: z.optional(z.enum(["clip", "unit"])),
});

/** The images section: what every candidate renders for image scorers. */
export const studyImagesSchema = z.strictObject({
  /** A backend of gyoza.yaml, or "stand-in" (src/automix/standin-backend.ts, in-process). */
  backend: z.string().check(z.minLength(1)),
  prompts: z.array(z.string()).check(z.minLength(1)),
  seeds: z.array(z.number().check(z.int())).check(z.minLength(1)),
  negative: z.optional(z.string()),
  steps: z.optional(z.number().check(z.int(), z.positive())),
  cfg: z.optional(z.number()),
  sampler: z.optional(z.string()),
  scheduler: z.optional(z.string()),
  width: z.optional(z.number().check(z.int(), z.positive())),
  height: z.optional(z.number().check(z.int(), z.positive())),
  clip_skip: z.optional(z.number().check(z.int(), z.positive())),
  /** Where each trial's images are kept (default: not kept). */
  out: z.optional(z.string().check(z.minLength(1))),
});

/** A person rates each trial's images in gyoza serve's Automix tab (scorers/manual-scorer.ts). */
const manualScorerSchema = z.strictObject({
  type: z.literal("manual"),
  name: z.optional(z.string().check(z.minLength(1))),
  weight: z.optional(z.number()),
  tally: z.optional(z.enum(TALLIES)),
});

export const studyFileSchema = z.strictObject({
  "automix-study": z.literal(STUDY_FILE_VERSION),
  name: z
    .string()
    .check(z.regex(/^[A-Za-z0-9._-]{1,100}$/, "a study name is 1-100 letters, digits, '.', '_' or '-'")),
  /** The base recipe file. */
  recipe: z.string().check(z.minLength(1)),
  /** The search space file (`automix: 1`, src/automix/FORMAT.md). */
  space: z.string().check(z.minLength(1)),
  optimizer: z.optional(z.enum(OPTIMIZER_NAMES)),
  seed: z.optional(z.number().check(z.int())),
  budget: z.number().check(z.int(), z.positive()),
  batch: z.optional(z.number().check(z.int(), z.positive())),
  /** Where weight-space candidates are merged (default: <study file folder>/.gyoza-automix/<name>). */
  work: z.optional(z.string().check(z.minLength(1))),
  images: z.optional(studyImagesSchema),
  scorers: z
    .array(z.union([weightsScorerSchema, httpScorerSchema, onnxScorerSchema, manualScorerSchema]))
    .check(z.minLength(1)),
});

export type StudyFileData = z.infer<typeof studyFileSchema>;
export type ScorerSettings = StudyFileData["scorers"][number];

/** A study file with its paths made absolute and its defaults filled in. */
export interface ResolvedStudy {
  readonly name: string;
  readonly recipeFile: string;
  readonly spaceFile: string;
  readonly optimizer: OptimizerName;
  readonly seed: number;
  readonly budget: number;
  readonly batch: number;
  readonly work: string;
  readonly images?: NonNullable<StudyFileData["images"]>;
  readonly scorers: readonly (ScorerSettings & {
    name: string;
    weight: number;
    tally: (typeof TALLIES)[number];
  })[];
}

export async function readStudyFile(file: string): Promise<ResolvedStudy> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new GyozaError("io", `cannot read the study file: ${(cause as Error).message}`, { file, cause });
  }
  return parseStudyFile(text, resolve(file));
}

export function parseStudyFile(text: string, file: string): ResolvedStudy {
  if (Buffer.byteLength(text, "utf8") > MAX_STUDY_FILE_BYTES)
    throw new GyozaError("limit", `a study file is at most ${MAX_STUDY_FILE_BYTES} bytes`, { file });
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors[0])
    throw new GyozaError(
      "recipe",
      `this study file is not valid YAML: ${document.errors[0].message.split("\n")[0]}`,
      { file },
    );
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    throw new GyozaError("recipe", `this study file's YAML cannot be used: ${(cause as Error).message}`, {
      file,
      cause,
    });
  }
  const parsed = studyFileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = formatPath(issue.path);
    const message = issue.code === "unrecognized_keys" ? `unknown field "${issue.keys[0]}"` : issue.message;
    throw new GyozaError("recipe", `${path ? `${path}: ` : ""}${message}`, { file, path });
  }
  const study = parsed.data;
  const dir = dirname(file);
  const at = (path: string) => resolve(dir, path);
  const names = new Set<string>();
  const scorers = study.scorers.map((scorer, i) => {
    const name = scorer.name ?? `${scorer.type}${i}`;
    if (names.has(name))
      throw new GyozaError("recipe", `scorers[${i}].name: "${name}" is used twice`, { file });
    names.add(name);
    const common = { ...scorer, name, weight: scorer.weight ?? 1, tally: scorer.tally ?? "mean" } as const;
    if (scorer.type === "weights") return { ...common, target: at(scorer.target) };
    if (scorer.type === "onnx") return { ...common, model: at(scorer.model) };
    return common;
  });
  if (scorers.some((s) => s.type !== "weights") && !study.images)
    throw new GyozaError(
      "recipe",
      "an http, onnx or manual scorer scores images: the study needs an images: section",
      {
        file,
        path: "images",
      },
    );
  const manual = scorers.filter((s) => s.type === "manual");
  // a rating is asked per trial (POST …/trials/N/rating names no scorer), so one person's pick per trial
  if (manual.length > 1)
    throw new GyozaError(
      "recipe",
      `scorers: "${manual[1]!.name}" is a second manual scorer; a study has at most one`,
      {
        file,
        path: "scorers",
      },
    );
  if (manual.length > 0 && !study.images?.out)
    throw new GyozaError(
      "recipe",
      "a manual scorer shows each trial's images in gyoza serve: the study must keep them (images.out)",
      { file, path: "images.out", fix: "add out: images/ (a folder) to the images: section" },
    );
  return {
    name: study.name,
    recipeFile: at(study.recipe),
    spaceFile: at(study.space),
    optimizer: study.optimizer ?? DEFAULT_OPTIMIZER,
    seed: study.seed ?? 1,
    budget: study.budget,
    batch: study.batch ?? 1,
    work: at(study.work ?? `.gyoza-automix/${study.name}`),
    ...(study.images
      ? { images: { ...study.images, ...(study.images.out ? { out: at(study.images.out) } : {}) } }
      : {}),
    scorers,
  };
}
