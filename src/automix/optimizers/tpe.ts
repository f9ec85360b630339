/**
 * Tree-structured Parzen Estimator (J. Bergstra, R. Bardenet, Y. Bengio, B. Kégl, "Algorithms for
 * Hyper-Parameter Optimization", NeurIPS 2011), univariate, with Optuna's TPESampler defaults
 * (optuna/samplers/_tpe, v3): 10 random start-up trials, 24 candidates per proposal,
 * γ(n) = min(⌈0.1·n⌉, 25) trials in the "good" group, Optuna's `default_weights` (flat for the 25
 * most recent, a ramp before them), a prior component at the centre with σ = the range and weight
 * 1, bandwidths from the distance to the neighbouring observations (endpoints not considered),
 * clipped below by Optuna's "magic clip" range / min(100, 1 + n). Every coordinate lives in [0,1];
 * the mixtures are truncated to it. A categorical coordinate with k buckets uses Optuna's
 * categorical estimator: a histogram of the observed buckets plus the prior spread evenly.
 *
 * Parallel asks use the constant liar (Ginsbourger et al. 2010; Optuna's `constant_liar`): a
 * candidate asked but not yet told counts as an observation with the worst score told so far,
 * so proposals made while it is pending steer away from it.
 */
import type { Candidate, Optimizer, OptimizerOptions, OptimizerSpace, TrialResult } from "./optimizer.js";
import { comparableScore } from "./optimizer.js";
import { RandomSource } from "./random-source.js";

export const TPE_STARTUP_TRIALS = 10;
export const TPE_EI_CANDIDATES = 24;
const PRIOR_WEIGHT = 1;

interface Observation {
  readonly x: readonly number[];
  readonly score: number;
}

export class Tpe implements Optimizer {
  readonly name = "tpe" as const;
  private readonly random: RandomSource;
  private readonly told: Observation[] = [];
  private readonly pending = new Map<number, Candidate>();
  private nextId = 0;

  constructor(
    private readonly space: OptimizerSpace,
    private readonly options: OptimizerOptions,
  ) {
    this.random = new RandomSource(options.seed);
  }

  ask(count: number): Candidate[] {
    const out: Candidate[] = [];
    for (let i = 0; i < count && !this.done(); i++) {
      const x = this.nextId < TPE_STARTUP_TRIALS ? this.randomPoint() : this.propose();
      const candidate = { id: this.nextId++, x };
      this.pending.set(candidate.id, candidate);
      out.push(candidate);
    }
    return out;
  }

  tell(results: readonly TrialResult[]): void {
    for (const { candidate, score } of results) {
      if (!this.pending.delete(candidate.id)) continue;
      this.told.push({ x: candidate.x, score: comparableScore(score) });
    }
  }

  done(): boolean {
    return this.options.budget !== undefined && this.nextId >= this.options.budget;
  }

  private randomPoint(): number[] {
    return Array.from({ length: this.space.dimensions }, (_, i) => {
      const k = this.space.categories?.[i] ?? 0;
      return k > 0 ? (this.random.integer(k) + 0.5) / k : this.random.next();
    });
  }

  private propose(): number[] {
    const lie = this.told.reduce((worst, o) => Math.min(worst, o.score), Number.POSITIVE_INFINITY);
    const observations: Observation[] = [
      ...this.told,
      ...[...this.pending.values()].map((c) => ({ x: c.x, score: lie })),
    ];
    // Best first; ties keep the order told (stable sort), so the split is deterministic.
    const ranked = observations
      .map((o, order) => ({ o, order }))
      .sort((a, b) => b.o.score - a.o.score || a.order - b.order);
    const nBelow = Math.min(Math.ceil(0.1 * ranked.length), 25);
    const below = ranked
      .slice(0, nBelow)
      .sort((a, b) => a.order - b.order)
      .map((r) => r.o);
    const above = ranked
      .slice(nBelow)
      .sort((a, b) => a.order - b.order)
      .map((r) => r.o);
    return Array.from({ length: this.space.dimensions }, (_, i) => {
      const k = this.space.categories?.[i] ?? 0;
      return k > 0 ? this.proposeCategory(i, k, below, above) : this.proposeContinuous(i, below, above);
    });
  }

  private proposeContinuous(i: number, below: Observation[], above: Observation[]): number {
    const good = parzen(below.map((o) => o.x[i]!));
    const bad = parzen(above.map((o) => o.x[i]!));
    let best = 0;
    let bestGain = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < TPE_EI_CANDIDATES; c++) {
      const x = sampleMixture(good, this.random);
      const gain = logMixture(good, x) - logMixture(bad, x);
      if (gain > bestGain) {
        bestGain = gain;
        best = x;
      }
    }
    return best;
  }

  private proposeCategory(i: number, k: number, below: Observation[], above: Observation[]): number {
    const good = histogram(
      below.map((o) => bucketOf(o.x[i]!, k)),
      k,
    );
    const bad = histogram(
      above.map((o) => bucketOf(o.x[i]!, k)),
      k,
    );
    let best = 0;
    let bestGain = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < TPE_EI_CANDIDATES; c++) {
      let u = this.random.next();
      let bucket = 0;
      while (bucket < k - 1 && u >= good[bucket]!) u -= good[bucket++]!;
      const gain = Math.log(good[bucket]!) - Math.log(bad[bucket]!);
      if (gain > bestGain) {
        bestGain = gain;
        best = bucket;
      }
    }
    return (best + 0.5) / k;
  }
}

interface Mixture {
  readonly weights: readonly number[];
  readonly mus: readonly number[];
  readonly sigmas: readonly number[];
  /** log(weight / (σ·√(2π)·mass inside [0,1])) per component: the truncated normal's constant. */
  readonly logCoefficients: readonly number[];
}

/** Optuna's `default_weights`: flat for the 25 most recent observations, a ramp from 1/n before them. */
function defaultWeights(n: number): number[] {
  if (n < 25) return new Array<number>(n).fill(1);
  const ramp = Array.from({ length: n - 25 }, (_, i) =>
    n - 25 === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (n - 26),
  );
  return [...ramp, ...new Array<number>(25).fill(1)];
}

/** The truncated-Gaussian Parzen estimator over [0,1] of `values` (in the order observed) plus the prior. */
function parzen(values: readonly number[]): Mixture {
  const mus = [...values, 0.5];
  const n = mus.length;
  const order = mus.map((_, i) => i).sort((a, b) => mus[a]! - mus[b]! || a - b);
  const sorted = [0, ...order.map((i) => mus[i]!), 1];
  const sortedSigmas = order.map((_, j) =>
    Math.max(sorted[j + 1]! - sorted[j]!, sorted[j + 2]! - sorted[j + 1]!),
  );
  if (sorted.length >= 4) {
    sortedSigmas[0] = sorted[2]! - sorted[1]!;
    sortedSigmas[n - 1] = sorted[n]! - sorted[n - 1]!;
  }
  const minSigma = 1 / Math.min(100, 1 + n);
  const sigmas = new Array<number>(n);
  order.forEach((index, j) => {
    sigmas[index] = Math.min(1, Math.max(minSigma, sortedSigmas[j]!));
  });
  sigmas[n - 1] = 1; // the prior's
  const raw = [...defaultWeights(values.length), PRIOR_WEIGHT];
  const total = raw.reduce((a, b) => a + b, 0);
  const weights = raw.map((w) => w / total);
  const logCoefficients = weights.map((w, i) => {
    const mu = mus[i]!;
    const sigma = sigmas[i]!;
    const mass = normalCdf((1 - mu) / sigma) - normalCdf(-mu / sigma);
    return Math.log(w) - Math.log(sigma * Math.sqrt(2 * Math.PI) * Math.max(mass, 1e-300));
  });
  return { weights, mus, sigmas, logCoefficients };
}

function sampleMixture(mixture: Mixture, random: RandomSource): number {
  let u = random.next();
  let component = 0;
  while (component < mixture.weights.length - 1 && u >= mixture.weights[component]!)
    u -= mixture.weights[component++]!;
  const mu = mixture.mus[component]!;
  const sigma = mixture.sigmas[component]!;
  // Rejection from the untruncated normal: μ lies in [0,1], so at least ~1/3 of draws land inside.
  for (let attempt = 0; attempt < 1000; attempt++) {
    const x = mu + sigma * random.normal();
    if (x >= 0 && x <= 1) return x;
  }
  return Math.min(1, Math.max(0, mu));
}

function logMixture(mixture: Mixture, x: number): number {
  const n = mixture.mus.length;
  const terms = new Array<number>(n);
  let top = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const z = (x - mixture.mus[i]!) / mixture.sigmas[i]!;
    const term = mixture.logCoefficients[i]! - 0.5 * z * z;
    terms[i] = term;
    if (term > top) top = term;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(terms[i]! - top);
  return top + Math.log(sum);
}

/** Standard normal CDF via erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

function bucketOf(x: number, k: number): number {
  return Math.min(k - 1, Math.max(0, Math.floor(x * k)));
}

/** Optuna's categorical estimator: observed buckets (weighted as above) plus the prior spread evenly. */
function histogram(buckets: readonly number[], k: number): number[] {
  const weights = defaultWeights(buckets.length);
  const mass = new Array<number>(k).fill(PRIOR_WEIGHT / k);
  buckets.forEach((b, i) => {
    mass[b]! += weights[i]!;
  });
  const total = mass.reduce((a, b) => a + b, 0);
  return mass.map((m) => m / total);
}
