import type { StoredTrial } from "./study-store.js";

/**
 * What `gyoza automix show` reports of a study: the best trials, how much each coordinate seems
 * to matter, and how the best score grew.
 *
 * Importance is |Pearson correlation| between a coordinate and the score over the finished trials
 * (ANOVA-lite: it sees monotone effects, not a peak in the middle of a range, so it is a hint, not
 * a verdict); 0 for a coordinate that never varied.
 */
export interface StudyReport {
  readonly trials: number;
  readonly done: number;
  readonly failed: number;
  readonly best: readonly StoredTrial[];
  readonly importance: readonly { dimension: number; label: string; importance: number }[];
  /** Best score so far after each finished trial, by trial number. */
  readonly convergence: readonly { trial: number; best: number }[];
}

export function studyReport(trials: readonly StoredTrial[], labels: readonly string[], top = 5): StudyReport {
  const done = trials.filter((t) => t.state === "done" && t.score !== null);
  const best = [...done].sort((a, b) => b.score! - a.score! || a.number - b.number).slice(0, top);
  const scores = done.map((t) => t.score!);
  const importance = labels.map((label, dimension) => ({
    dimension,
    label,
    importance: Math.abs(
      correlation(
        done.map((t) => t.x[dimension] ?? 0),
        scores,
      ),
    ),
  }));
  importance.sort((a, b) => b.importance - a.importance || a.dimension - b.dimension);
  const convergence: { trial: number; best: number }[] = [];
  let so = Number.NEGATIVE_INFINITY;
  for (const trial of done) {
    if (trial.score! > so) {
      so = trial.score!;
      convergence.push({ trial: trial.number, best: so });
    }
  }
  return {
    trials: trials.length,
    done: done.length,
    failed: trials.filter((t) => t.state === "failed").length,
    best,
    importance,
    convergence,
  };
}

/** Pearson's r; 0 when either side has no spread or fewer than 3 points. */
export function correlation(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 3) return 0;
  const mx = xs.reduce((s, v) => s + v, 0) / n;
  const my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}
