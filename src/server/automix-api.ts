/**
 * What the automix routes answer (routes/automix.ts), in a file of its own with no imports, so the
 * web client can use the types without pulling the server's modules into its type check.
 */
/** One study in the Automix tab's list. */
export interface AutomixStudySummary {
  name: string;
  optimizer: string;
  seed: number;
  budget: number | null;
  status: string;
  trials: { done: number; failed: number; pending: number };
  bestScore: number | null;
  updated: string;
  /** Trials waiting for a person's rating (a `type: manual` scorer). */
  awaitingRating: number;
}

/** A trial as the Automix tab shows it: its score, tallies, weights in block terms, image links. */
export interface AutomixTrialView {
  number: number;
  state: string;
  score: number | null;
  scores: Record<string, { scores: number[]; tally: number }> | null;
  weights: string;
  worker: string | null;
  timings: Record<string, number> | null;
  error: string | null;
  /**
   * Image links relative to /api (as the web client's api() and withToken() take them); null for an
   * image that was not kept (a distributed worker's: the record names its prompt and seed only).
   */
  images: { url: string | null; prompt: string; seed: number }[];
}

export interface AutomixStudyView extends AutomixStudySummary {
  settings: Record<string, unknown>;
  trialList: AutomixTrialView[];
  /** Best score so far after each trial that improved it. */
  bestSoFar: { trial: number; best: number }[];
  importance: { dimension: number; label: string; importance: number }[];
  /** Trials waiting for a person's rating, oldest first: rate them with POST …/trials/N/rating. */
  pendingRatings: AutomixPendingRating[];
}

/** A trial a `type: manual` scorer waits on: its images, in the order the scores follow. */
export interface AutomixPendingRating {
  trial: number;
  /** When the study asked (ISO 8601). */
  requested: string;
  /** Image links relative to /api, like AutomixTrialView's. */
  images: { url: string; prompt: string; seed: number }[];
}

/**
 * `POST /api/automix/studies/:name/trials/:n/rating`: one score per image (higher is better), or
 * the index of the best image (scored 1, the others 0).
 */
export type AutomixRatingRequest = { scores: number[] } | { best: number };

export interface AutomixRatingResponse {
  trial: number;
  scores: number[];
  rated: string;
}
