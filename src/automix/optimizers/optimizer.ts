/**
 * The ask/tell interface every automix optimizer implements (issue #24). An optimizer proposes
 * points in the search space's unit cube [0,1]^d (the search space maps unit → recipe values) and
 * MAXIMISES the score it is told. Everything is deterministic: the same seed and the same sequence
 * of asks and tells give the same candidates, so a study resumes by re-creating the optimizer with
 * its seed and replaying the recorded asks and tells in order (see replayOptimizer).
 */

/** One point to evaluate. `id` counts up from 0 in ask order, per optimizer. */
export interface Candidate {
  readonly id: number;
  /** Coordinates in [0,1]^d, d = the space's dimensions. */
  readonly x: readonly number[];
}

/** A finished evaluation. A failed trial is told as -Infinity (or NaN): it ranks below everything. */
export interface TrialResult {
  readonly candidate: Candidate;
  readonly score: number;
}

export interface Optimizer {
  readonly name: OptimizerName;
  /**
   * Up to `count` new candidates, all distinct from each other and from those pending. Fewer (or
   * none) when the optimizer is waiting for tells it needs (automb1's passes, CMA-ES's generation
   * once its population is out) or its budget is spent.
   */
  ask(count: number): Candidate[];
  /** Results for earlier asks, in any order and batching; the order told is part of the state. */
  tell(results: readonly TrialResult[]): void;
  /** True when it will propose nothing more (budget spent, or the baseline's passes finished). */
  done?(): boolean;
}

export const OPTIMIZER_NAMES = ["cmaes", "tpe", "quadratic", "random", "automb1"] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/**
 * The default, chosen by `npm run bench:automix` (README, "Automated block-weight search"): the
 * only one that needs at most a third of autoMBW v1's trials on the three separable synthetic
 * objectives; on interacting blocks (the rotated objective) it needs 0.84 of them, still the best.
 */
export const DEFAULT_OPTIMIZER: OptimizerName = "quadratic";

/** What an optimizer needs to know of the space: its dimension, and which coordinates are categorical. */
export interface OptimizerSpace {
  readonly dimensions: number;
  /** Per coordinate, the number of buckets of a categorical choice (absent or 0 = continuous). */
  readonly categories?: readonly number[];
}

export interface OptimizerOptions {
  /** Any integer; the same seed and the same tells give the same candidates. */
  readonly seed: number;
  /** Total trials the study will run; optimizers that plan (automb1, TPE's start-up) use it. */
  readonly budget?: number;
  /** Candidates evaluated in parallel; CMA-ES uses it as a lower bound of its population. */
  readonly batch?: number;
}

/** One recorded step of a study, for replay on resume. */
export type OptimizerEvent =
  | { readonly kind: "ask"; readonly count: number }
  | { readonly kind: "tell"; readonly results: readonly { readonly id: number; readonly score: number }[] };

/** Scores that compare: NaN and failures rank below every real score. */
export function comparableScore(score: number): number {
  return Number.isNaN(score) ? Number.NEGATIVE_INFINITY : score;
}
