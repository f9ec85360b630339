import { basename, dirname, resolve } from "node:path";
import { GyozaError } from "../../errors.js";
import { hashFiles } from "../../hash/index.js";
import type { ProgressListener } from "../../progress.js";
import type { Recipe } from "../../recipe/index.js";
import type { ResolvedStudy } from "../study-file.js";
import type { DistributedStudySettings } from "./coordinator.js";
import { type EvaluationInput, type StudyObjectiveSpec, studyObjectiveSchema } from "./types.js";

/**
 * A study file turned into a distributed study (`gyoza automix run STUDY --redis`): every file the
 * base recipe and the scorers read becomes an input named by its file name and sha256 (workers
 * find their own copy by name and verify it before work starts), the base recipe names those
 * inputs by file name (pinned to their sha256), and the scorers travel as specs the worker
 * rebuilds (`study` objective). Never a weights file: each worker merges locally.
 */
export interface DistributedStudyPlan {
  readonly settings: DistributedStudySettings;
  /** The base recipe with its files named as the job's inputs: candidates' recipes are made from it. */
  readonly base: Recipe;
}

export interface PlanOptions {
  readonly dimensions: number;
  /** Jobs in flight at most (about the number of workers). */
  readonly inFlight: number;
  /** The hash cache (default: the user's), or false. */
  readonly hashCacheDir?: string | false;
  readonly onProgress?: ProgressListener;
}

export async function planDistributedStudy(
  study: ResolvedStudy,
  base: Recipe,
  options: PlanOptions,
): Promise<DistributedStudyPlan> {
  for (const scorer of study.scorers) {
    const type = (scorer as { type: string }).type;
    if (type === "manual")
      throw new GyozaError("usage", `scorer "${scorer.name}": manual rating runs in-process only`, {
        fix: `run this study without --redis (gyoza automix run ${study.name}.yaml), or drop the manual scorer`,
      });
    if (type !== "weights" && type !== "http" && type !== "onnx")
      throw new GyozaError(
        "usage",
        `scorer "${scorer.name}" (type ${type}) cannot run in a distributed study`,
      );
  }
  const recipeDir = dirname(study.recipeFile);
  const files = new Map<string, string>(); // absolute path → what reads it, for messages
  for (const [name, input] of Object.entries(base.inputs))
    files.set(resolve(recipeDir, input.path), `the recipe's input ${name}`);
  if (base.output.vae.file !== undefined)
    files.set(resolve(recipeDir, base.output.vae.file), "the recipe's VAE");
  for (const scorer of study.scorers) {
    if (scorer.type === "weights") files.set(scorer.target, `scorer ${scorer.name}'s target`);
    if (scorer.type === "onnx") files.set(scorer.model, `scorer ${scorer.name}'s model`);
  }
  const paths = [...files.keys()];
  const hashed = await hashFiles(paths, {
    algorithms: ["sha256"],
    ...(options.hashCacheDir !== undefined ? { cacheDir: options.hashCacheDir } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const sha256 = new Map<string, string>();
  const byName = new Map<string, { path: string; sha256: string }>();
  paths.forEach((path, i) => {
    const hash = hashed[i]?.hashes.sha256?.toLowerCase();
    if (hash === undefined) throw new GyozaError("io", `cannot hash ${path}`, { file: path });
    sha256.set(path, hash);
    const name = basename(path);
    const other = byName.get(name);
    if (other && other.sha256 !== hash)
      throw new GyozaError(
        "usage",
        `two different files are called "${name}" (${other.path} and ${path}): workers find inputs by file name`,
        { fix: "rename one of them (and point the recipe or study file at the new name)" },
      );
    byName.set(name, { path, sha256: hash });
  });
  const local = (path: string) => {
    const file = resolve(recipeDir, path);
    return { name: basename(file), sha256: sha256.get(file) as string };
  };

  const named = structuredClone(base);
  for (const [inputName, input] of Object.entries(named.inputs)) {
    const { name, sha256: hash } = local(input.path);
    if (input.sha256 !== undefined && input.sha256.toLowerCase() !== hash)
      throw new GyozaError(
        "hash-mismatch",
        `the recipe's input ${inputName} pins sha256 ${input.sha256.toLowerCase()}, but ${resolve(recipeDir, input.path)} has ${hash}`,
        { file: study.recipeFile },
      );
    named.inputs[inputName] = { ...input, path: name, sha256: hash };
  }
  if (named.output.vae.file !== undefined)
    named.output.vae = { ...named.output.vae, file: local(named.output.vae.file).name };
  named.output = { ...named.output, path: basename(named.output.path) };

  const inputs: EvaluationInput[] = [...byName].map(([name, file]) => ({ name, sha256: file.sha256 }));
  const objective = studyObjective(study, (path) => {
    const file = resolve(path);
    return { name: basename(file), sha256: sha256.get(file) as string };
  });
  return {
    base: named,
    settings: {
      optimizer: study.optimizer,
      seed: study.seed,
      dimensions: options.dimensions,
      budget: study.budget,
      inFlight: options.inFlight,
      recipe: named,
      inputs,
      objective,
    },
  };
}

function studyObjective(
  study: ResolvedStudy,
  file: (path: string) => { name: string; sha256: string },
): StudyObjectiveSpec {
  const scorers = study.scorers.map((scorer) => {
    if (scorer.type === "weights") {
      const { name, sha256 } = file(scorer.target);
      return { ...scorer, target: name, target_sha256: sha256 };
    }
    if (scorer.type === "onnx") {
      const { name, sha256 } = file(scorer.model);
      return { ...scorer, model: name, model_sha256: sha256 };
    }
    return scorer;
  });
  let images: StudyObjectiveSpec["images"];
  if (study.images) {
    const { backend: _backend, out: _out, ...rest } = study.images;
    images = rest;
  }
  // what a worker will check, checked here first: a study no worker accepts fails before it starts
  const parsed = studyObjectiveSchema.safeParse({ kind: "study", ...(images ? { images } : {}), scorers });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GyozaError(
      "usage",
      `this study cannot run through Redis: ${issue.path.join(".") || "objective"}: ${issue.message}`,
    );
  }
  return parsed.data;
}
