import { mkdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { DistributedStudySettings } from "../../automix/distributed/coordinator.js";
import type { LibraryTarget } from "../../automix/distributed/library-mirror.js";
import type { TrialDetail } from "../../automix/distributed/study-log.js";
import type { ResolvedStudy } from "../../automix/study-file.js";
import type { StoredStudy } from "../../automix/study-store.js";
import { GyozaError } from "../../errors.js";
import { defaultHashCacheDir } from "../../hash/hash-cache.js";
import { defaultLibraryPath } from "../../library/open-library.js";
import { loadRecipe, type Recipe, recipeFromData } from "../../recipe/index.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";
import { gracefulSigint, reportStudyStopped } from "../study-interrupt.js";

/**
 * `gyoza automix run STUDY --redis URL` and `gyoza automix resume NAME --redis URL`: the study's
 * candidates evaluated by `gyoza worker` processes (issue #24, "Scale") through runDistributedStudy,
 * its trials mirrored into the library, where `automix show` / `best` read them.
 */
export interface DistributedFlags {
  library?: string;
  json?: boolean;
  redis: string;
  inFlight?: number;
  log?: string;
}

/** Jobs in flight when --in-flight is not given: enough for a few workers. */
export const DEFAULT_IN_FLIGHT = 4;

export async function runDistributed(file: string, flags: DistributedFlags): Promise<void> {
  const { readStudyFile } = await import("../../automix/study-file.js");
  const { SearchSpace } = await import("../../automix/search-space.js");
  const { planDistributedStudy } = await import("../../automix/distributed/study-settings.js");
  const { openLibrary } = await import("../../library/open-library.js");
  const { findStudy } = await import("../../automix/study-store.js");
  const study = await readStudyFile(file);
  const recipeText = await readText(study.recipeFile, "base recipe");
  const spaceText = await readText(study.spaceFile, "search space");
  const space = SearchSpace.parse(spaceText, study.spaceFile);
  const base = loadRecipe(recipeText, { sourceName: study.recipeFile });
  // a first candidate that does not make a valid recipe fails here, before the study exists
  space.toRecipe(new Array(space.dimensions).fill(0.5), base);
  const library = flags.library ?? defaultLibraryPath();
  const db = openLibrary(library);
  try {
    if (findStudy(db, study.name))
      throw new GyozaError("usage", `a study called "${study.name}" already exists`, {
        fix: `continue it with gyoza automix resume ${study.name} --redis ${flags.redis}, or give the study file another name`,
      });
  } finally {
    db.close();
  }
  if (study.images?.out)
    process.stderr.write(
      "gyoza: images.out is not used through Redis: each worker renders and scores its images and keeps none\n",
    );
  const plan = await planDistributedStudy(study, base, {
    dimensions: space.dimensions,
    inFlight: flags.inFlight ?? DEFAULT_IN_FLIGHT,
    hashCacheDir: defaultHashCacheDir(),
    onProgress: progressBar({ quiet: flags.json ?? false }),
  });
  const log = resolve(flags.log ?? defaultLogPath(library, study.name));
  await coordinate(study.name, library, log, flags, {
    settings: plan.settings,
    candidateRecipe: (x) => space.toRecipe(x, plan.base),
    describe: (x) => space.describe(x),
    target: {
      path: library,
      spaceYaml: spaceText,
      baseRecipe: recipeText,
      settings: {
        log,
        recipeFile: study.recipeFile,
        spaceFile: study.spaceFile,
        scorers: study.scorers,
        ...(study.images ? { images: withoutOut(study.images) } : {}),
      },
    },
  });
}

export async function resumeDistributed(stored: StoredStudy, flags: DistributedFlags): Promise<void> {
  const { SearchSpace } = await import("../../automix/search-space.js");
  const { StudyLog } = await import("../../automix/distributed/study-log.js");
  const library = flags.library ?? defaultLibraryPath();
  const settings = stored.settings as { log?: unknown; spaceFile?: string };
  const log = resolve(
    flags.log ?? (typeof settings.log === "string" ? settings.log : defaultLogPath(library, stored.name)),
  );
  const studyLog = new StudyLog(log);
  let logged: DistributedStudySettings | undefined;
  try {
    logged = studyLog.settings(stored.name) as DistributedStudySettings | undefined;
  } finally {
    studyLog.close();
  }
  if (logged === undefined)
    throw new GyozaError("usage", `the study log ${log} has no study ${stored.name}`, {
      fix: "give the log the study was run with: --log FILE",
    });
  // weight-space studies started without a study file have no space: their jobs carry no recipe
  const space =
    stored.spaceYaml.trim() === "" ? undefined : SearchSpace.parse(stored.spaceYaml, settings.spaceFile);
  const base = logged.objective.kind === "study" ? recipeFromData(structuredClone(logged.recipe)) : undefined;
  await coordinate(stored.name, library, log, flags, {
    ...(space && base
      ? { candidateRecipe: (x: readonly number[]) => space.toRecipe(x, base as Recipe) }
      : {}),
    describe: (x) => (space ? space.describe(x) : x.map((v, i) => `x${i}=${v.toFixed(4)}`).join(" ")),
    target: { path: library },
  });
}

interface Coordination {
  readonly settings?: DistributedStudySettings;
  readonly candidateRecipe?: (x: readonly number[]) => unknown;
  readonly describe: (x: readonly number[]) => string;
  readonly target: LibraryTarget;
}

/** Runs the coordinator with a line per finished trial, Ctrl-C to stop (resume continues), a summary. */
async function coordinate(
  name: string,
  library: string,
  log: string,
  flags: DistributedFlags,
  run: Coordination,
): Promise<void> {
  const { runDistributedStudy } = await import("../../automix/distributed/coordinator.js");
  const { getStudy, listTrials } = await import("../../automix/study-store.js");
  const { openLibrary } = await import("../../library/open-library.js");
  await mkdir(dirname(log), { recursive: true });
  const interrupt = gracefulSigint("stopping once the jobs in flight are recorded");
  const started = performance.now();
  let recorded = 0;
  let best: { trial: number; score: number } | undefined;
  try {
    const summary = await runDistributedStudy({
      redisUrl: flags.redis,
      logPath: log,
      study: name,
      ...(run.settings ? { settings: run.settings } : {}),
      ...(run.candidateRecipe ? { candidateRecipe: run.candidateRecipe } : {}),
      library: run.target,
      signal: interrupt.signal,
      log: (line) => process.stderr.write(`gyoza: ${line}\n`),
      onTrial: (trial, score, worker, detail) => {
        recorded++;
        if (Number.isFinite(score) && (best === undefined || score > best.score)) best = { trial, score };
        process.stderr.write(`${trialLine(trial, score, worker, detail, recorded, started, best)}\n`);
      },
    });
    const db = openLibrary(library);
    let trials: ReturnType<typeof listTrials>;
    try {
      trials = listTrials(db, getStudy(db, name).id);
    } finally {
      db.close();
    }
    const top = summary.best ? trials.find((t) => t.number === summary.best?.trial) : undefined;
    const result = {
      study: name,
      status: "finished",
      trials: summary.trials,
      failed: summary.failed,
      log,
      best: top
        ? { trial: top.number, score: top.score, x: top.x, weights: run.describe(top.x), worker: top.worker }
        : null,
    };
    if (flags.json) printJson(result);
    else
      process.stdout.write(
        `study ${name}: ${result.trials} trials (${result.failed} failed)` +
          (top
            ? `; best trial ${top.number}, score ${top.score!.toFixed(6)} by ${top.worker}\n${run.describe(top.x)}\n`
            : "\n"),
      );
  } catch (error) {
    if (reportStudyStopped(error, name, `gyoza automix resume ${name} --redis ${flags.redis}`)) return;
    throw error;
  } finally {
    interrupt.restore();
  }
}

/** One finished trial: `trial 3: score -0.0123 by gpu-a (2 images, 1.40 s) · 4 done this run, best -0.0100 (trial 2), 0.9 trials/s`. */
function trialLine(
  trial: number,
  score: number,
  worker: string | undefined,
  detail: TrialDetail | undefined,
  recorded: number,
  started: number,
  best: { trial: number; score: number } | undefined,
): string {
  const what = Number.isFinite(score) ? `score ${score.toFixed(6)}` : "failed";
  const images = detail?.images ? `${detail.images.length} images, ` : "";
  const seconds = detail?.timings?.total !== undefined ? `${detail.timings.total.toFixed(2)} s` : "";
  const extra = images || seconds ? ` (${images}${seconds})`.replace(", )", ")") : "";
  const rate = recorded / Math.max(1e-3, (performance.now() - started) / 1000);
  return `trial ${trial}: ${what}${worker ? ` by ${worker}` : ""}${extra} · ${recorded} done this run${
    best ? `, best ${best.score.toFixed(6)} (trial ${best.trial})` : ""
  }, ${rate.toFixed(2)} trials/s`;
}

/** Where a study's coordinator log lives unless --log says: beside the library, one file per study. */
export function defaultLogPath(library: string, study: string): string {
  return join(dirname(resolve(library)), "automix-logs", `${study}.sqlite`);
}

function withoutOut(images: NonNullable<ResolvedStudy["images"]>) {
  const { out: _out, ...rest } = images;
  return rest;
}

/** A study's recipe or space file as text (a read error names the file and what it is). */
export async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    throw new GyozaError("io", `cannot read the study's ${what}: ${(cause as Error).message}`, {
      file,
      cause,
    });
  }
}
