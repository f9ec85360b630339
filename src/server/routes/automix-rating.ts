import type { FastifyInstance } from "fastify";
import { checkScores, findRating, giveRating } from "../../automix/rating-store.js";
import { listTrials, type StoredStudy } from "../../automix/study-store.js";
import { isGyozaError } from "../../errors.js";
import type { AutomixRatingResponse } from "../automix-api.js";
import type { ServerContext } from "../create-server.js";
import { HttpError } from "../http-errors.js";

/**
 * `POST /api/automix/studies/:name/trials/:n/rating`: a person's rating of a trial a `type: manual`
 * scorer waits on (src/automix/scorers/manual-scorer.ts). The study process polls the library for
 * it, so writing the row is the whole answer. Each way a rating can be wrong is its own 4xx with a
 * message saying which: 404 for a study or trial that does not exist, 409 for a trial that awaits no
 * rating (never asked, or rated already), 400 for a body that is not `{scores: [...]}` or
 * `{best: i}`, the wrong count, a number that is not finite or an index out of range.
 */
const TRIAL = /^\d{1,7}$/;
const BODY_HINT = 'send {"scores": [one number per image]} or {"best": index of the best image}';

export function registerAutomixRatingRoute(
  app: FastifyInstance,
  context: ServerContext,
  studyOf: (name: string) => StoredStudy,
): void {
  app.post<{ Params: { name: string; n: string } }>(
    "/api/automix/studies/:name/trials/:n/rating",
    async (request): Promise<AutomixRatingResponse> => {
      const db = context.store.db;
      const study = studyOf(request.params.name);
      const { n } = request.params;
      const number = TRIAL.test(n) ? Number(n) : undefined;
      const asked = number === undefined ? undefined : findRating(db, study.id, number);
      if (!asked) {
        const known = number !== undefined && listTrials(db, study.id).some((t) => t.number === number);
        if (!known) throw new HttpError(404, "not-found", `study "${study.name}" has no trial ${n}`);
        throw new HttpError(
          409,
          "not-awaiting-rating",
          `trial ${n} of study "${study.name}" is not awaiting a rating`,
          "only trials a manual scorer asked about take a rating: see pendingRatings in GET /api/automix/studies/NAME",
        );
      }
      const rated = () =>
        new HttpError(
          409,
          "already-rated",
          `trial ${n} of study "${study.name}" was rated already (at ${findRating(db, study.id, asked.trial)?.ratedAt})`,
          "a rating is given once; the study has used it",
        );
      if (asked.scores !== null) throw rated();
      const scores = scoresOf(request.body, asked.images.length, asked.trial);
      try {
        const stored = giveRating(db, study.id, asked.trial, scores);
        return { trial: stored.trial, scores: [...stored.scores!], rated: stored.ratedAt! };
      } catch (error) {
        // two people rating at once: the first wins, the second is told
        if (findRating(db, study.id, asked.trial)?.scores) throw rated();
        if (isGyozaError(error)) throw new HttpError(400, "usage", error.message, BODY_HINT);
        throw error;
      }
    },
  );
}

/** The body as one score per image: `{scores}` checked as given, `{best}` as 1 for the pick and 0 for the rest. */
function scoresOf(body: unknown, images: number, trial: number): number[] {
  const bad = (message: string) => new HttpError(400, "usage", message, BODY_HINT);
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw bad("the body is not a JSON object");
  const keys = Object.keys(body);
  const given = keys.filter((key) => key === "scores" || key === "best");
  const unknown = keys.find((key) => key !== "scores" && key !== "best");
  if (unknown !== undefined) throw bad(`body.${unknown}: unknown field`);
  if (given.length !== 1) throw bad("the body needs exactly one of scores and best");
  const { scores, best } = body as { scores?: unknown; best?: unknown };
  if (given[0] === "best") {
    if (typeof best !== "number" || !Number.isInteger(best))
      throw bad(`body.best: ${JSON.stringify(best)} is not an image index (a whole number)`);
    if (best < 0 || best >= images)
      throw bad(`body.best: trial ${trial} has no image ${best} (its images are 0 to ${images - 1})`);
    return Array.from({ length: images }, (_, i) => (i === best ? 1 : 0));
  }
  if (!Array.isArray(scores)) throw bad("body.scores: not a list of numbers");
  try {
    checkScores(scores, images, trial);
  } catch (error) {
    if (isGyozaError(error))
      throw bad(error.message.startsWith("scores[") ? `body.${error.message}` : error.message);
    throw error;
  }
  return scores as number[];
}
