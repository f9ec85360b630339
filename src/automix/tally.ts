import { GyozaError } from "../errors.js";

/**
 * Turning many scores into one (issue #24). A scorer gives one number per image (or one per
 * candidate); a tally folds them into the candidate's score for that objective, and several
 * objectives are combined into the number the optimizer maximises.
 *
 * Geometric and harmonic means only make sense for positive numbers. autoMBW took them of raw
 * scores and broke on ImageReward, whose scores are often negative (log of a negative is NaN, a
 * harmonic mean across zero explodes). Here the scores are first mapped to be positive with a
 * softplus, `softplus(s) = ln(1 + e^s)`: strictly positive, increasing (the order of candidates is
 * kept), ≈ s for large s and ≈ e^s for very negative s. It depends on each score alone, so a
 * candidate's tally never changes with what the other candidates scored (a min-shift over the
 * batch would). The geometric and harmonic tallies are reported on that softplus scale.
 */
export const TALLIES = ["mean", "median", "min", "geometric", "harmonic"] as const;
export type Tally = (typeof TALLIES)[number];

/** ln(1 + e^s) without overflow for large s. */
export function softplus(s: number): number {
  return s > 30 ? s : Math.log1p(Math.exp(s));
}

/** One tallied number from a candidate's scores; NaN when there are none or any is not finite. */
export function tally(scores: readonly number[], how: Tally): number {
  if (scores.length === 0 || scores.some((s) => !Number.isFinite(s))) return Number.NaN;
  switch (how) {
    case "mean":
      return scores.reduce((sum, s) => sum + s, 0) / scores.length;
    case "median": {
      const sorted = [...scores].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    }
    case "min":
      return Math.min(...scores);
    case "geometric": {
      const logs = scores.reduce((sum, s) => sum + Math.log(softplus(s)), 0);
      return Math.exp(logs / scores.length);
    }
    case "harmonic": {
      const inverse = scores.reduce((sum, s) => sum + 1 / softplus(s), 0);
      return scores.length / inverse;
    }
  }
}

export function parseTally(name: string): Tally {
  if ((TALLIES as readonly string[]).includes(name)) return name as Tally;
  throw new GyozaError("usage", `there is no tally called "${name}"`, {
    fix: `use one of ${TALLIES.join(", ")}`,
  });
}

/** One objective's tallied score and its weight in the combination. */
export interface WeightedObjective {
  readonly name: string;
  readonly weight: number;
  readonly score: number;
}

/**
 * The study's score: the weighted sum of the objectives' tallies (weights as the study file gives
 * them; a negative weight minimises that objective). NaN when any objective failed, so the trial
 * ranks below every real score.
 */
export function combineObjectives(objectives: readonly WeightedObjective[]): number {
  if (objectives.length === 0) return Number.NaN;
  let total = 0;
  for (const { score, weight } of objectives) {
    if (!Number.isFinite(score)) return Number.NaN;
    total += weight * score;
  }
  return total;
}
