import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { type AutomixOrigin, describeAutomixOrigin } from "../../automix/automix-origin.js";
import type { ResolvedStudy } from "../../automix/study-file.js";
import type { StudyReport } from "../../automix/study-report.js";
import type { StoredStudy } from "../../automix/study-store.js";
import type { GenerationBackend } from "../../backends/types.js";
import { GyozaError } from "../../errors.js";
import { defaultHashCacheDir } from "../../hash/hash-cache.js";
import { writeFileAtomically } from "../../io/atomic-file.js";
import { defaultLibraryPath, type LibraryDatabase, openLibrary } from "../../library/open-library.js";
import { loadRecipe, type Recipe } from "../../recipe/index.js";
import { countBar } from "../count-bar.js";
import { hashCacheOption, integerFlag, mkdirOption, prepareOutputFolder } from "../flags.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";
import { gracefulSigint, reportStudyStopped } from "../study-interrupt.js";
import { writeRecipeFile } from "../write-recipe-file.js";
import { DEFAULT_IN_FLIGHT, readText } from "./automix-distributed.js";

interface CommonFlags {
  library?: string;
  json?: boolean;
  config?: string;
}

const libraryOption = [
  "--library <file>",
  "the library database holding studies (default $GYOZA_LIBRARY or ~/.local/share/gyoza/library.db)",
] as const;

export function registerAutomix(program: Command): void {
  const automix = program
    .command("automix")
    .description(
      "search block weights automatically: resumable studies with optimizers and pluggable scorers (issue #24)",
    );

  automix
    .command("run")
    .description("start a study from a study file (automix-study: 1) and run it to its budget")
    .argument("<study>", "the study file (YAML)")
    .option(...libraryOption)
    .option("--config <file>", "gyoza.yaml with the generation backends (for image scorers)")
    .option("--redis <url>", "evaluate the candidates on gyoza worker processes through this Redis (BullMQ)")
    .option(
      "--in-flight <n>",
      `with --redis: candidates evaluated at once, about the number of workers (default ${DEFAULT_IN_FLIGHT})`,
      integerFlag("--in-flight", 1, 10_000),
    )
    .option(
      "--log <file>",
      "with --redis: the coordinator's study log (default: automix-logs/NAME.sqlite beside the library)",
    )
    .option("--json", "print the result as JSON")
    .action(async (file: string, flags: RunFlags) => {
      if (flags.redis !== undefined) {
        const { runDistributed } = await import("./automix-distributed.js");
        await runDistributed(file, { ...flags, redis: flags.redis });
        return;
      }
      refuseDistributedOnly(flags);
      const { readStudyFile } = await import("../../automix/study-file.js");
      const { createStudy } = await import("../../automix/study-store.js");
      const resolved = await readStudyFile(file);
      const recipeText = await readText(resolved.recipeFile, "base recipe");
      const spaceText = await readText(resolved.spaceFile, "search space");
      const { space, base } = await loadSpaceAndRecipe(
        spaceText,
        resolved.spaceFile,
        recipeText,
        resolved.recipeFile,
      );
      // a first candidate that does not make a valid recipe fails here, before the study exists
      space.toRecipe(new Array(space.dimensions).fill(0.5), base);
      await withLibrary(flags, async (db) => {
        const study = createStudy(db, {
          name: resolved.name,
          spaceYaml: spaceText,
          baseRecipe: recipeText,
          optimizer: resolved.optimizer,
          seed: resolved.seed,
          settings: resolved as unknown as Record<string, unknown>,
        });
        await execute(db, study, resolved, flags);
      });
    });

  automix
    .command("resume")
    .description("continue a stopped or crashed study; no finished trial is repeated")
    .argument("<name>", "the study's name")
    .option(...libraryOption)
    .option("--config <file>", "gyoza.yaml with the generation backends (for image scorers)")
    .option("--redis <url>", "a study run with --redis: the Redis its workers take jobs from")
    .option("--log <file>", "with --redis: the coordinator's study log (default: the one it was run with)")
    .option("--json", "print the result as JSON")
    .action(async (name: string, flags: RunFlags) => {
      const { getStudy } = await import("../../automix/study-store.js");
      const db = openLibrary(flags.library ?? defaultLibraryPath());
      let stored: StoredStudy;
      try {
        stored = getStudy(db, name);
      } finally {
        db.close();
      }
      const distributed = stored.settings.distributed === true;
      if (distributed && flags.redis === undefined)
        throw new GyozaError("usage", `study "${name}" runs through Redis`, {
          fix: `resume it with gyoza automix resume ${name} --redis URL (the Redis its workers use)`,
        });
      if (!distributed && flags.redis !== undefined)
        throw new GyozaError("usage", `study "${name}" was run in-process, not through Redis`, {
          fix: `resume it without --redis: gyoza automix resume ${name}`,
        });
      if (flags.redis !== undefined) {
        const { resumeDistributed } = await import("./automix-distributed.js");
        await resumeDistributed(stored, { ...flags, redis: flags.redis });
        return;
      }
      refuseDistributedOnly(flags);
      await withLibrary(flags, async (db) => {
        const study = getStudy(db, name);
        await execute(db, study, study.settings as unknown as ResolvedStudy, flags);
      });
    });

  automix
    .command("show")
    .description("a study's best trials, per-coordinate importance and convergence")
    .argument("<name>", "the study's name")
    .option(...libraryOption)
    .option("--top <n>", "how many best trials", (text) => Number.parseInt(text, 10), 5)
    .option("--json", "print the report as JSON")
    .action(async (name: string, flags: CommonFlags & { top: number }) => {
      const { getStudy, listTrials } = await import("../../automix/study-store.js");
      const { studyReport } = await import("../../automix/study-report.js");
      const { SearchSpace } = await import("../../automix/search-space.js");
      await withLibrary(flags, async (db) => {
        const study = getStudy(db, name);
        const trials = listTrials(db, study.id);
        // a distributed study started without a study file has no space: coordinates by index
        const space =
          study.spaceYaml.trim() === ""
            ? unitCubeSpace(trials[0]?.x.length ?? 0)
            : SearchSpace.parse(study.spaceYaml);
        const report = studyReport(
          trials,
          space.dimensionList.map((d) => d.label),
          flags.top,
        );
        const settings = study.settings as unknown as ResolvedStudy;
        if (flags.json) {
          printJson({
            study: {
              name: study.name,
              status: study.status,
              optimizer: study.optimizer,
              seed: study.seed,
              budget: settings.budget,
            },
            ...report,
            best: report.best.map((t) => ({ ...t, weights: space.describe(t.x) })),
          });
          return;
        }
        printReport(study, settings, report, (x) => space.describe(x));
      });
    });

  automix
    .command("best")
    .description(
      "write a study's best candidate as a recipe (the study named in its description); with --merge also merge it and add the model to the library, the study in its provenance",
    )
    .argument("<name>", "the study's name")
    .requiredOption("--out <recipe>", "the recipe file to write (YAML)")
    .option("--merge", "also merge the recipe (to its output.path, or -o) and add the model to the library")
    .option("-o, --output <file>", "the merged model file (implies --merge)")
    .addOption(mkdirOption())
    .addOption(hashCacheOption())
    .option(...libraryOption)
    .option("--json", "print the trial and files as JSON")
    .action(async (name: string, flags: BestFlags) => {
      const { getStudy, listTrials } = await import("../../automix/study-store.js");
      await withLibrary(flags, async (db) => {
        const study = getStudy(db, name);
        const settings = study.settings as unknown as ResolvedStudy;
        const { space, base } = await loadSpaceAndRecipe(
          study.spaceYaml,
          settings.spaceFile,
          study.baseRecipe,
          settings.recipeFile,
        );
        const done = listTrials(db, study.id).filter((t) => t.state === "done" && t.score !== null);
        if (done.length === 0)
          throw new GyozaError("usage", `study "${name}" has no finished trial yet`, {
            fix: `run it: gyoza automix resume ${name}`,
          });
        const best = done.reduce((a, b) => (b.score! > a.score! ? b : a));
        const origin: AutomixOrigin = {
          study: study.name,
          trial: best.number,
          score: best.score!,
          optimizer: study.optimizer,
          seed: study.seed,
        };
        const recipe: Recipe = space.toRecipe(best.x, base);
        const baseDir = dirname(settings.recipeFile);
        // the written recipe names the model file --merge writes, so merging it again gives the same file
        if (flags.output) recipe.output = { ...recipe.output, path: resolve(flags.output) };
        const provenance = `gyoza automix study "${study.name}" (${study.optimizer}, seed ${study.seed}), trial ${best.number}, score ${best.score}`;
        recipe.output = { ...recipe.output, description: provenance };
        const header = `# ${provenance}\n# weights: ${space.describe(best.x).split("\n").join("\n#   ")}\n`;
        await writeRecipeFile(recipe, flags.out, baseDir, { header });
        const merged =
          flags.merge || flags.output ? await mergeBest(db, recipe, baseDir, origin, flags) : undefined;
        if (flags.json)
          printJson({
            study: study.name,
            trial: best.number,
            score: best.score,
            x: best.x,
            recipe: flags.out,
            ...(merged ? { model: merged } : {}),
          });
        else {
          process.stdout.write(`trial ${best.number} (score ${best.score}) written to ${flags.out}\n`);
          if (merged)
            process.stdout.write(
              `merged to ${merged.file} (AutoV3 ${merged.autov3.slice(0, 12)}), in the library as ${merged.model ?? "(no model)"} / ${merged.version ?? "(no version)"}: ${describeAutomixOrigin(origin)}\n`,
            );
        }
      });
    });
}

interface RunFlags extends CommonFlags {
  redis?: string;
  inFlight?: number;
  log?: string;
}

/** --in-flight and --log mean something only with --redis: refused without it rather than ignored. */
function refuseDistributedOnly(flags: RunFlags): void {
  const given = flags.inFlight !== undefined ? "--in-flight" : flags.log !== undefined ? "--log" : undefined;
  if (given)
    throw new GyozaError("usage", `${given} is for a study run through Redis`, {
      fix: "add --redis URL, or leave it out for an in-process study",
    });
}

interface BestFlags extends CommonFlags {
  out: string;
  merge?: boolean;
  output?: string;
  mkdir?: boolean;
  hashCache: boolean;
}

/**
 * `automix best --merge`: the recipe through the normal merge path (progress bar, temp file renamed
 * when complete) with the study trial recorded as `gyoza_automix` in the file's metadata, then the
 * file added to the library, whose scan reads that record into the version's provenance.
 */
async function mergeBest(
  db: LibraryDatabase,
  recipe: Recipe,
  baseDir: string,
  origin: AutomixOrigin,
  flags: BestFlags,
): Promise<{ file: string; autov3: string; sha256: string; model: string | null; version: string | null }> {
  const { runRecipe } = await import("../../engine/run-recipe.js");
  const { loadKernel } = await import("../../kernels/index.js");
  const { addToLibrary, LibraryStore, showEntry } = await import("../../library/index.js");
  const output = resolve(baseDir, recipe.output.path);
  await prepareOutputFolder(output, flags.mkdir);
  const hashCacheDir = flags.hashCache === false ? false : defaultHashCacheDir();
  const result = await runRecipe(recipe, {
    baseDir,
    kernel: await loadKernel(),
    onProgress: progressBar({ quiet: flags.json ?? false }),
    hashCacheDir,
    automix: origin,
  });
  const store = new LibraryStore(db);
  await addToLibrary(store, [result.output], { cacheDir: hashCacheDir });
  const entry = showEntry(store, result.output);
  // a file grouped by a sidecar (or by hand) shows under that version; null only if nothing groups it
  const version = store.versionsOf(entry.id)[0];
  return {
    file: result.output,
    autov3: result.dataSha256 ?? "",
    sha256: entry.hashes?.SHA256 ?? "",
    model: version?.model_name ?? null,
    version: version?.version_name ?? null,
  };
}

async function loadSpaceAndRecipe(
  spaceText: string,
  spaceFile: string,
  recipeText: string,
  recipeFile: string,
) {
  const { SearchSpace } = await import("../../automix/search-space.js");
  return {
    space: SearchSpace.parse(spaceText, spaceFile),
    base: loadRecipe(recipeText, { sourceName: recipeFile }),
  };
}

async function withLibrary(flags: CommonFlags, work: (db: LibraryDatabase) => Promise<void>): Promise<void> {
  const db = openLibrary(flags.library ?? defaultLibraryPath());
  try {
    await work(db);
  } finally {
    db.close();
  }
}

/** Builds scorers, backend and stand-ins from the stored settings, runs the loop with a progress bar, stops cleanly on Ctrl-C. */
async function execute(
  db: LibraryDatabase,
  study: StoredStudy,
  settings: ResolvedStudy,
  flags: CommonFlags,
): Promise<void> {
  const { runStudy, mergeIntoFolder, trialImagePath } = await import("../../automix/run-study.js");
  const { buildObjectives, imageParams, imageStage } = await import("../../automix/study-objectives.js");
  const { listTrials } = await import("../../automix/study-store.js");
  const { runRecipe } = await import("../../engine/run-recipe.js");
  const { space, base } = await loadSpaceAndRecipe(
    study.spaceYaml,
    settings.spaceFile,
    study.baseRecipe,
    settings.recipeFile,
  );
  const baseDir = dirname(settings.recipeFile);
  const closers: (() => Promise<void>)[] = [];
  // during a study the first Ctrl-C stops after the current step (the study is marked stopped)
  const interrupt = gracefulSigint("stopping after the current step");
  const bar = countBar("trials", settings.budget, { quiet: flags.json ?? false });
  try {
    await mkdir(settings.work, { recursive: true });
    const built = await buildObjectives(settings.scorers, {
      db,
      onWaiting: (trial) =>
        process.stderr.write(
          `\ngyoza: trial ${trial.number} waits for your rating of its ${trial.images} images: gyoza serve --library ${flags.library ?? defaultLibraryPath()}, Automix tab, study ${trial.study}, Rate\n`,
        ),
    });
    closers.push(() => built.close());
    const { objectives } = built;
    let backend: GenerationBackend | undefined;
    if (settings.images) backend = await openBackend(settings.images.backend, settings.work, flags);
    const images = settings.images;
    if (images?.out) await mkdir(images.out, { recursive: true });
    const stage = backend
      ? await imageStage(backend, baseDir)
      : mergeIntoFolder(settings.work, baseDir, (recipe, options) =>
          runRecipe(recipe, { ...options, hashCacheDir: defaultHashCacheDir() }),
        );
    bar.tick(listTrials(db, study.id).filter((t) => t.state !== "pending").length);
    const result = await runStudy({
      db,
      study,
      space,
      base,
      objectives,
      ...(images && backend
        ? {
            images: {
              backend,
              prompts: images.prompts,
              seeds: images.seeds,
              params: imageParams(images),
              ...(images.out
                ? {
                    write: async (trial: number, image: { prompt: string; seed: number }, png: Buffer) => {
                      const path = trialImagePath(
                        images.out!,
                        trial,
                        images.prompts.indexOf(image.prompt),
                        image.seed,
                      );
                      await writeFileAtomically(path, png);
                      return path;
                    },
                  }
                : {}),
            },
          }
        : {}),
      budget: settings.budget,
      batch: settings.batch,
      stage,
      signal: interrupt.signal,
      worker: "in-process",
      onTrial: (progress) => bar.tick(progress.done),
    });
    bar.stop();
    const done = result.trials.filter((t) => t.state === "done" && t.score !== null);
    const best = done.length > 0 ? done.reduce((a, b) => (b.score! > a.score! ? b : a)) : undefined;
    const summary = {
      study: study.name,
      status: result.status,
      trials: result.trials.length,
      evaluated: result.evaluated,
      failed: result.trials.filter((t) => t.state === "failed").length,
      best: best
        ? { trial: best.number, score: best.score, x: best.x, weights: space.describe(best.x) }
        : null,
    };
    if (flags.json) printJson(summary);
    else {
      process.stdout.write(
        `study ${study.name}: ${summary.trials} trials (${summary.evaluated} now, ${summary.failed} failed)` +
          (best
            ? `; best trial ${best.number}, score ${best.score!.toFixed(6)}\n${space.describe(best.x)}\n`
            : "\n"),
      );
    }
    const failed = result.trials.find((t) => t.state === "failed");
    if (failed) process.stderr.write(`gyoza: trial ${failed.number} failed: ${failed.error}\n`);
  } catch (error) {
    bar.stop();
    if (reportStudyStopped(error, study.name, `gyoza automix resume ${study.name}`)) return;
    throw error;
  } finally {
    interrupt.restore();
    for (const close of closers) await close().catch(() => undefined);
  }
}

async function openBackend(name: string, work: string, flags: CommonFlags): Promise<GenerationBackend> {
  const { createBackend, loadGyozaConfig, pickBackend } = await import("../../backends/index.js");
  if (name !== "stand-in") {
    const config = await loadGyozaConfig(flags.config ? { path: flags.config } : {});
    return createBackend(pickBackend(config, name));
  }
  const { StandInBackend } = await import("../../automix/standin-backend.js");
  return new StandInBackend(work);
}

/** Labels x0..x(n-1) and the raw point, for a study whose search space is not stored. */
function unitCubeSpace(dimensions: number): {
  dimensionList: { label: string }[];
  describe(x: readonly number[]): string;
} {
  return {
    dimensionList: Array.from({ length: dimensions }, (_, i) => ({ label: `x${i}` })),
    describe: (x) => x.map((v, i) => `x${i}=${v.toFixed(4)}`).join(" "),
  };
}

function printReport(
  study: StoredStudy,
  settings: ResolvedStudy,
  report: StudyReport,
  describe: (x: readonly number[]) => string,
): void {
  const out: string[] = [];
  out.push(
    `study ${study.name} (${study.status}): ${study.optimizer}, seed ${study.seed}, ${report.trials}/${settings.budget} trials, ${report.failed} failed`,
  );
  out.push("", "best trials:");
  for (const trial of report.best) {
    out.push(
      `  #${trial.number}  score ${trial.score!.toFixed(6)}${trial.autov3 ? `  AutoV3 ${trial.autov3.slice(0, 12)}` : ""}`,
    );
    out.push(`      ${describe(trial.x).split("\n").join("\n      ")}`);
  }
  out.push("", "importance (|correlation| of a coordinate with the score):");
  for (const entry of report.importance.slice(0, 10))
    out.push(`  ${entry.label.padEnd(32)} ${entry.importance.toFixed(3)}`);
  out.push("", "convergence (trial: best so far):");
  out.push(`  ${report.convergence.map((c) => `${c.trial}: ${c.best.toFixed(4)}`).join(", ")}`);
  process.stdout.write(`${out.join("\n")}\n`);
}
