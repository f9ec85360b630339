import { createReadStream } from "node:fs";
import { lstat, realpath } from "node:fs/promises";
import { dirname, relative, resolve, sep } from "node:path";
import type { FastifyInstance, FastifyReply } from "fastify";
import { countAwaitingRatings, listAwaitingRatings } from "../../automix/rating-store.js";
import { SearchSpace } from "../../automix/search-space.js";
import type { ResolvedStudy } from "../../automix/study-file.js";
import { studyReport } from "../../automix/study-report.js";
import {
  findStudy,
  listStudies,
  listTrials,
  type StoredStudy,
  type StoredTrial,
} from "../../automix/study-store.js";
import { ioError } from "../../io/byte-source.js";
import { loadRecipe, relocateRecipe, saveRecipe } from "../../recipe/index.js";
import type { AutomixStudySummary, AutomixStudyView } from "../automix-api.js";
import type { ServerContext } from "../create-server.js";
import { HttpError } from "../http-errors.js";
import { registerAutomixRatingRoute } from "./automix-rating.js";

const NAME = /^[^/\\\0]{1,200}$/;

function studyOf(context: ServerContext, name: string) {
  if (!NAME.test(name)) throw new HttpError(400, "usage", "not a study name");
  const study = findStudy(context.store.db, name);
  if (!study)
    throw new HttpError(404, "not-found", `there is no automix study called "${name}" in this library`);
  return study;
}

function summaryOf(
  study: StoredStudy,
  trials: readonly StoredTrial[],
  awaitingRating: number,
): AutomixStudySummary {
  const done = trials.filter((t) => t.state === "done" && t.score !== null);
  const budget = (study.settings as { budget?: unknown }).budget;
  return {
    name: study.name,
    optimizer: study.optimizer,
    seed: study.seed,
    budget: typeof budget === "number" ? budget : null,
    status: study.status,
    trials: {
      done: done.length,
      failed: trials.filter((t) => t.state === "failed").length,
      pending: trials.filter((t) => t.state === "pending").length,
    },
    bestScore: done.length > 0 ? Math.max(...done.map((t) => t.score!)) : null,
    updated: study.updatedAt,
    awaitingRating,
  };
}

/** A trial image's link, relative to /api (the web client's api() and withToken() take it so). */
function imageUrl(study: StoredStudy, trial: number, index: number): string {
  return `/automix/studies/${encodeURIComponent(study.name)}/trials/${trial}/images/${index}`;
}

/** The study's space, or null when its stored YAML no longer parses (the list still shows the study). */
function spaceOf(study: StoredStudy): SearchSpace | null {
  try {
    return SearchSpace.parse(study.spaceYaml, (study.settings as Partial<ResolvedStudy>).spaceFile);
  } catch {
    return null;
  }
}

/**
 * Streams a trial's image: only a path the trial record names, a plain file (not a symlink), inside
 * the study's images.out folder; anything else is 404/403, so the route cannot be steered to other files.
 */
async function sendTrialImage(path: string, folder: string, reply: FastifyReply) {
  let real: string;
  try {
    if (!(await lstat(path)).isFile())
      throw new HttpError(404, "not-found", "the trial's image is not a file");
    real = await realpath(path);
  } catch (cause) {
    if (cause instanceof HttpError) throw cause;
    if ((cause as { code?: string }).code === "ENOENT")
      throw new HttpError(404, "not-found", "the trial's image is gone");
    throw ioError(path, cause);
  }
  let root: string;
  try {
    root = await realpath(folder);
  } catch {
    throw new HttpError(403, "forbidden", "the study's images folder is gone");
  }
  const inside = relative(root, real);
  if (inside === "" || inside.startsWith(`..${sep}`) || inside === ".." || resolve(root, inside) !== real)
    throw new HttpError(403, "forbidden", "the trial's image is outside the study's images folder");
  return reply.type("image/png").header("X-Content-Type-Options", "nosniff").send(createReadStream(real));
}

/**
 * Automix studies in the library the server opened (the CLI writes them; SQLite WAL lets both read
 * and write at once): the list, one study with its trials and best-so-far curve, a trial's images,
 * and the best candidate as recipe YAML for the builder; and the one write, a person's rating of a
 * trial a manual scorer waits on (automix-rating.ts).
 */
export function registerAutomixRoutes(app: FastifyInstance, context: ServerContext): void {
  registerAutomixRatingRoute(app, context, (name) => studyOf(context, name));

  app.get("/api/automix/studies", async (): Promise<AutomixStudySummary[]> => {
    const db = context.store.db;
    const awaiting = countAwaitingRatings(db);
    return listStudies(db).map((study) =>
      summaryOf(study, listTrials(db, study.id), awaiting.get(study.id) ?? 0),
    );
  });

  app.get<{ Params: { name: string } }>(
    "/api/automix/studies/:name",
    async (request): Promise<AutomixStudyView> => {
      const study = studyOf(context, request.params.name);
      const trials = listTrials(context.store.db, study.id);
      const space = spaceOf(study);
      const report = studyReport(trials, space ? space.dimensionList.map((d) => d.label) : []);
      const pending = listAwaitingRatings(context.store.db, study.id);
      return {
        ...summaryOf(study, trials, pending.length),
        settings: study.settings,
        trialList: trials.map((t) => ({
          number: t.number,
          state: t.state,
          score: t.score,
          scores: t.scores,
          weights: space ? space.describe(t.x) : t.x.join(", "),
          worker: t.worker,
          timings: t.timings,
          error: t.error,
          images: (t.images ?? []).map((image, i) => ({
            // a distributed worker keeps no images: the record names prompt and seed, no file
            url: image.path ? imageUrl(study, t.number, i) : null,
            prompt: image.prompt,
            seed: image.seed,
          })),
        })),
        bestSoFar: [...report.convergence],
        importance: [...report.importance],
        pendingRatings: pending.map((rating) => ({
          trial: rating.trial,
          requested: rating.requestedAt,
          images: rating.images.map((image, i) => ({
            url: imageUrl(study, rating.trial, i),
            prompt: image.prompt,
            seed: image.seed,
          })),
        })),
      };
    },
  );

  app.get<{ Params: { name: string; n: string; i: string } }>(
    "/api/automix/studies/:name/trials/:n/images/:i",
    async (request, reply) => {
      const study = studyOf(context, request.params.name);
      const { n, i } = request.params;
      const trial = /^\d{1,7}$/.test(n)
        ? listTrials(context.store.db, study.id).find((t) => t.number === Number(n))
        : undefined;
      if (!trial) throw new HttpError(404, "not-found", `study "${study.name}" has no trial ${n}`);
      const image = /^\d{1,4}$/.test(i) ? trial.images?.[Number(i)] : undefined;
      if (!image) throw new HttpError(404, "not-found", `trial ${n} has no image ${i}`);
      if (!image.path)
        throw new HttpError(
          404,
          "not-found",
          `trial ${n}'s image ${i} was not kept (a distributed worker made it)`,
        );
      const out = (study.settings as { images?: { out?: unknown } }).images?.out;
      if (typeof out !== "string")
        throw new HttpError(403, "forbidden", "the study writes no images (no images.out)");
      return sendTrialImage(resolve(out, image.path), out, reply);
    },
  );

  app.get<{ Params: { name: string } }>(
    "/api/automix/studies/:name/best-recipe",
    async (request): Promise<{ yaml: string; trial: number; score: number }> => {
      const study = studyOf(context, request.params.name);
      const done = listTrials(context.store.db, study.id).filter(
        (t) => t.state === "done" && t.score !== null,
      );
      if (done.length === 0)
        throw new HttpError(404, "not-found", `study "${study.name}" has no finished trial yet`);
      const best = done.reduce((a, b) => (b.score! > a.score! ? b : a));
      const settings = study.settings as Partial<ResolvedStudy>;
      const space = SearchSpace.parse(study.spaceYaml, settings.spaceFile);
      const recipeFile = settings.recipeFile ?? "recipe.yaml";
      const recipe = space.toRecipe(best.x, loadRecipe(study.baseRecipe, { sourceName: recipeFile }));
      recipe.output = {
        ...recipe.output,
        description: `gyoza automix study "${study.name}" (${study.optimizer}, seed ${study.seed}), trial ${best.number}, score ${best.score}`,
      };
      // the base recipe's paths are relative to its file; the builder resolves from the server's base folder
      const baseDir = context.baseDir();
      const moved = relocateRecipe(recipe, dirname(resolve(recipeFile)), baseDir);
      const plain = (path: string) => (path.split(/[\\/]/).includes("..") ? resolve(baseDir, path) : path);
      for (const input of Object.values(moved.inputs)) input.path = plain(input.path);
      moved.output.path = plain(moved.output.path);
      return { yaml: saveRecipe(moved), trial: best.number, score: best.score! };
    },
  );
}
