/**
 * CMA-ES, (μ/μ_w, λ) with rank-one and rank-μ updates and cumulative step-size adaptation, as in
 * N. Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv:1604.00772, 2016), Algorithm 1 (the
 * positive-weights variant) with the default parameters of its Table 1.
 *
 * The search runs in the unit cube [0,1]^d: it starts at the centre with σ0 = 0.25 (the tutorial
 * advises σ0 ≈ 0.3 of the range, the optimum presumed inside m ± 2σ). Bounds (tutorial, Appendix
 * "Boundaries and constraints"): an offspring outside the cube is resampled (up to 20 times) and
 * otherwise repaired by clipping; the update uses the point actually evaluated, so the search
 * distribution learns from what was scored.
 *
 * Ask/tell: the population of a generation is drawn at once (deterministically from the seed) and
 * handed out by `ask`; the next generation is drawn when every member has been told, ranked by
 * score (ties by id), so the order of tells within a generation does not matter. λ is the
 * tutorial's 4 + ⌊3 ln d⌋ rounded up to a multiple of `batch`, so a worker pool is never left
 * idle waiting for a generation's last few members.
 */
import type { Candidate, Optimizer, OptimizerOptions, OptimizerSpace, TrialResult } from "./optimizer.js";
import { comparableScore } from "./optimizer.js";
import { RandomSource } from "./random-source.js";
import { symmetricEigen } from "./symmetric-eigen.js";

const INITIAL_SIGMA = 0.25;
const MAX_RESAMPLES = 20;

interface Offspring {
  readonly candidate: Candidate;
  /** Undefined until told. */
  score: number | undefined;
}

export class CmaEs implements Optimizer {
  readonly name = "cmaes" as const;
  readonly lambda: number;
  private readonly d: number;
  private readonly mu: number;
  private readonly weights: number[];
  private readonly muEff: number;
  private readonly cSigma: number;
  private readonly dSigma: number;
  private readonly cC: number;
  private readonly c1: number;
  private readonly cMu: number;
  private readonly chiN: number;
  private readonly random: RandomSource;
  private mean: number[];
  private sigma = INITIAL_SIGMA;
  private pSigma: number[];
  private pC: number[];
  private covariance: number[];
  private basis: number[];
  private scales: number[];
  private generation: Offspring[] = [];
  private handedOut = 0;
  private generationCount = 0;
  private nextId = 0;
  /** Candidates handed out so far, over all generations (the budget counts these, not sampled ones). */
  private asked = 0;

  constructor(
    space: OptimizerSpace,
    private readonly options: OptimizerOptions,
  ) {
    const d = space.dimensions;
    this.d = d;
    this.random = new RandomSource(options.seed);
    const batch = Math.max(1, Math.floor(options.batch ?? 1));
    this.lambda = batch * Math.ceil((4 + Math.floor(3 * Math.log(d))) / batch);
    this.mu = Math.floor(this.lambda / 2);
    const raw = Array.from({ length: this.mu }, (_, i) => Math.log((this.lambda + 1) / 2) - Math.log(i + 1));
    const sum = raw.reduce((a, b) => a + b, 0);
    this.weights = raw.map((w) => w / sum);
    this.muEff = 1 / this.weights.reduce((a, w) => a + w * w, 0);
    this.cSigma = (this.muEff + 2) / (d + this.muEff + 5);
    this.dSigma = 1 + 2 * Math.max(0, Math.sqrt((this.muEff - 1) / (d + 1)) - 1) + this.cSigma;
    this.cC = (4 + this.muEff / d) / (d + 4 + (2 * this.muEff) / d);
    this.c1 = 2 / ((d + 1.3) ** 2 + this.muEff);
    this.cMu = Math.min(1 - this.c1, (2 * (this.muEff - 2 + 1 / this.muEff)) / ((d + 2) ** 2 + this.muEff));
    this.chiN = Math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d * d));
    this.mean = new Array<number>(d).fill(0.5);
    this.pSigma = new Array<number>(d).fill(0);
    this.pC = new Array<number>(d).fill(0);
    this.covariance = identity(d);
    this.basis = identity(d);
    this.scales = new Array<number>(d).fill(1);
  }

  ask(count: number): Candidate[] {
    const out: Candidate[] = [];
    while (out.length < count && !this.done()) {
      if (this.handedOut === this.generation.length) {
        // Every member handed out: the next generation needs their scores (tell updates and clears).
        if (this.generation.length > 0) break;
        this.sampleGeneration();
      }
      out.push(this.generation[this.handedOut++]!.candidate);
      this.asked++;
    }
    return out;
  }

  tell(results: readonly TrialResult[]): void {
    for (const { candidate, score } of results) {
      const member = this.generation.find((o) => o.candidate.id === candidate.id);
      if (member) member.score = comparableScore(score);
    }
    if (this.handedOut === this.generation.length && this.generation.every((o) => o.score !== undefined)) {
      this.update();
      this.generation = [];
      this.handedOut = 0;
    }
  }

  done(): boolean {
    return this.options.budget !== undefined && this.asked >= this.options.budget;
  }

  /** The current mean (the search's best guess), for reports. */
  get centre(): readonly number[] {
    return this.mean;
  }

  private sampleGeneration(): void {
    const d = this.d;
    this.generation = [];
    this.handedOut = 0;
    for (let k = 0; k < this.lambda; k++) {
      let x: number[] = [];
      for (let attempt = 0; attempt <= MAX_RESAMPLES; attempt++) {
        const z = Array.from({ length: d }, () => this.random.normal());
        x = Array.from({ length: d }, (_, i) => {
          let y = 0;
          for (let j = 0; j < d; j++) y += this.basis[i * d + j]! * this.scales[j]! * z[j]!;
          return this.mean[i]! + this.sigma * y;
        });
        if (x.every((v) => v >= 0 && v <= 1)) break;
      }
      this.generation.push({ candidate: { id: this.nextId++, x: x.map(clamp01) }, score: undefined });
    }
  }

  private update(): void {
    const d = this.d;
    const ranked = [...this.generation].sort(
      (a, b) => b.score! - a.score! || a.candidate.id - b.candidate.id,
    );
    const old = this.mean;
    const ys = ranked.slice(0, this.mu).map((o) => o.candidate.x.map((v, i) => (v - old[i]!) / this.sigma));
    const yw = new Array<number>(d).fill(0);
    ys.forEach((y, k) => {
      for (let i = 0; i < d; i++) yw[i]! += this.weights[k]! * y[i]!;
    });
    this.mean = old.map((m, i) => m + this.sigma * yw[i]!);
    // C^{-1/2}·yw = B·D^{-1}·Bᵀ·yw
    const bty = Array.from({ length: d }, (_, j) => {
      let s = 0;
      for (let i = 0; i < d; i++) s += this.basis[i * d + j]! * yw[i]!;
      return s / this.scales[j]!;
    });
    const invSqrtY = Array.from({ length: d }, (_, i) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += this.basis[i * d + j]! * bty[j]!;
      return s;
    });
    const sigmaFactor = Math.sqrt(this.cSigma * (2 - this.cSigma) * this.muEff);
    this.pSigma = this.pSigma.map((p, i) => (1 - this.cSigma) * p + sigmaFactor * invSqrtY[i]!);
    const pSigmaNorm = Math.hypot(...this.pSigma);
    this.generationCount++;
    const hSigma =
      pSigmaNorm / Math.sqrt(1 - (1 - this.cSigma) ** (2 * this.generationCount)) <
      (1.4 + 2 / (d + 1)) * this.chiN
        ? 1
        : 0;
    const cFactor = Math.sqrt(this.cC * (2 - this.cC) * this.muEff);
    this.pC = this.pC.map((p, i) => (1 - this.cC) * p + hSigma * cFactor * yw[i]!);
    const deltaH = (1 - hSigma) * this.cC * (2 - this.cC);
    const keep = 1 - this.c1 - this.cMu;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j <= i; j++) {
        let rankMu = 0;
        ys.forEach((y, k) => {
          rankMu += this.weights[k]! * y[i]! * y[j]!;
        });
        const value =
          (keep + this.c1 * deltaH) * this.covariance[i * d + j]! +
          this.c1 * this.pC[i]! * this.pC[j]! +
          this.cMu * rankMu;
        this.covariance[i * d + j] = value;
        this.covariance[j * d + i] = value;
      }
    }
    this.sigma *= Math.exp((this.cSigma / this.dSigma) * (pSigmaNorm / this.chiN - 1));
    // In a unit cube a σ above 1 only produces clipped points.
    this.sigma = Math.min(this.sigma, 1);
    const { values, vectors } = symmetricEigen(this.covariance, d);
    this.basis = vectors;
    this.scales = values.map((v) => Math.sqrt(Math.max(v, 1e-20)));
  }
}

function identity(d: number): number[] {
  const m = new Array<number>(d * d).fill(0);
  for (let i = 0; i < d; i++) m[i * d + i] = 1;
  return m;
}

function clamp01(v: number): number {
  return Math.min(1, Math.max(0, v));
}
