import { sleep } from "../../backends/http.js";
import { GyozaError, throwIfAborted } from "../../errors.js";
import type { LibraryDatabase } from "../../library/open-library.js";
import { checkScores, findRating, requestRating } from "../rating-store.js";
import { findStudy } from "../study-store.js";
import type { ImageScorer, ScoreOptions, ScorerImage } from "./scorer.js";

/**
 * The `type: manual` scorer (issue #24, scorer 4): a person rates each trial's images in the web
 * app (gyoza serve → Automix → Rate). For each trial it records in the library that the trial's
 * kept images await a rating (rating-store.ts), then waits for the rating by polling the library —
 * the server is another process, and the library file is what both share — with a backoff from
 * `pollMs` up to `maxPollMs`, so a long wait costs almost nothing. The study's signal (Ctrl-C) ends
 * the wait as an interrupt: the trial stays pending and `automix resume` waits for it again, or
 * takes the rating given meanwhile. Returns the person's scores, tallied like any image scorer's.
 */
export interface ManualScorerOptions {
  readonly name?: string;
  /** The library the study is recorded in; a study without one cannot be rated. */
  readonly db: LibraryDatabase | undefined;
  /** First wait between two looks at the library (default 200 ms); each wait is 1.5× the last. */
  readonly pollMs?: number;
  /** Longest wait between two looks (default 2 s). */
  readonly maxPollMs?: number;
  /** Told once per trial when it starts waiting (the CLI prints where to rate it). */
  readonly onWaiting?: (trial: { study: string; number: number; images: number }) => void;
}

export const DEFAULT_POLL_MS = 200;
export const DEFAULT_MAX_POLL_MS = 2000;

export function manualScorer(options: ManualScorerOptions): ImageScorer {
  const { db } = options;
  if (!db)
    throw new GyozaError(
      "usage",
      "a manual scorer waits for ratings given in gyoza serve, which reads them from the library: this study has no library",
      {
        fix: "run the study with a library (gyoza automix run --library FILE), and gyoza serve on the same file",
      },
    );
  const pollMs = Math.max(1, options.pollMs ?? DEFAULT_POLL_MS);
  const maxPollMs = Math.max(pollMs, options.maxPollMs ?? DEFAULT_MAX_POLL_MS);
  return {
    name: options.name ?? "manual",
    kind: "images",
    async score(images: readonly ScorerImage[], scoreOptions: ScoreOptions = {}): Promise<number[]> {
      const { trial, signal } = scoreOptions;
      if (!trial)
        throw new GyozaError("usage", "a manual scorer rates a trial of a study, and was not told which");
      if (!trial.images || trial.images.length !== images.length)
        throw new GyozaError(
          "usage",
          "a manual scorer shows the trial's image files in the web app, and this study does not keep them",
          { fix: "give the study's images: section an out: folder" },
        );
      const study = findStudy(db, trial.study);
      if (!study)
        throw new GyozaError(
          "unknown-id",
          `there is no automix study called "${trial.study}" in this library`,
        );
      const request = requestRating(db, study.id, {
        number: trial.number,
        x: trial.x,
        images: trial.images,
      });
      if (request.scores === null)
        options.onWaiting?.({ study: study.name, number: trial.number, images: request.images.length });
      let wait = pollMs;
      for (;;) {
        throwIfAborted(signal);
        const rating = findRating(db, study.id, trial.number);
        if (!rating)
          throw new GyozaError(
            "usage",
            `trial ${trial.number}'s rating request was removed from the library`,
          );
        if (rating.scores !== null) {
          // the library is shared with other programs: a rating that does not fit fails the trial, clearly
          checkScores(rating.scores, images.length, trial.number);
          return [...rating.scores];
        }
        try {
          await sleep(wait, signal);
        } catch (cause) {
          throwIfAborted(signal);
          throw cause;
        }
        wait = Math.min(maxPollMs, wait * 1.5);
      }
    },
  };
}
