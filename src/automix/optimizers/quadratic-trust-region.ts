/**
 * A derivative-free trust-region search with a separable quadratic model, the cheapest member of
 * the family of Powell's BOBYQA (M. J. D. Powell, "The BOBYQA algorithm for bound constrained
 * optimization without derivatives", 2009) and of A. R. Conn, K. Scheinberg, L. N. Vicente,
 * "Introduction to Derivative-Free Optimization" (SIAM 2009), ch. 10–11:
 *
 * 1. Around the centre c (first the cube's centre) with radius Δ, score BOBYQA's initial design
 *    c ± Δ·eᵢ for every coordinate (2d points, asked together: one batch for a worker pool).
 * 2. From c and the two points on each axis, fit per coordinate a parabola (gradient gᵢ and
 *    curvature hᵢ by central differences): the model is m(c + s) = f(c) + Σ gᵢsᵢ + ½ Σ hᵢsᵢ².
 * 3. Maximise the model over the box |sᵢ| ≤ 2Δ inside [0,1]^d (separable, so per coordinate:
 *    the parabola's vertex when hᵢ < 0, else the better end) and score that point.
 * 4. Classic trust-region update on ρ = actual / predicted gain: the step is taken when it beats
 *    the best point so far; Δ doubles (up to 0.5) when ρ > 0.75 and shrinks by half when ρ < 0.25,
 *    never below MIN_RADIUS (with noisy scores, differences over tiny steps are noise only).
 *    The next iteration builds its design around the new centre.
 *
 * One iteration costs 2d + 1 trials. On a separable quadratic it lands on the optimum after one
 * iteration; interactions between coordinates (which the model ignores) slow it to a coordinate-
 * wise descent, which the trust region keeps convergent. Deterministic: the seed is not needed.
 */

import { CandidateQueue } from "./candidate-queue.js";
import type { Candidate, Optimizer, OptimizerOptions, OptimizerSpace, TrialResult } from "./optimizer.js";
import { comparableScore } from "./optimizer.js";

const INITIAL_RADIUS = 0.2;
const MAX_RADIUS = 0.5;
const MIN_RADIUS = 0.02;

export class QuadraticTrustRegion implements Optimizer {
  readonly name = "quadratic" as const;
  private readonly d: number;
  private centre: number[];
  private centreScore: number | undefined;
  private radius = INITIAL_RADIUS;
  private readonly queue = new CandidateQueue();
  private readonly waiting = new Map<
    number,
    { role: "centre" | "plus" | "minus" | "step"; axis: number; candidate: Candidate; score?: number }
  >();
  private predictedGain = 0;
  private worstFinite = Number.POSITIVE_INFINITY;

  constructor(
    space: OptimizerSpace,
    private readonly options: OptimizerOptions,
  ) {
    this.d = space.dimensions;
    this.centre = new Array<number>(this.d).fill(0.5);
    this.queueDesign();
  }

  ask(count: number): Candidate[] {
    return this.queue.take(count, () => this.done());
  }

  tell(results: readonly TrialResult[]): void {
    for (const { candidate, score } of results) {
      const entry = this.waiting.get(candidate.id);
      if (!entry) continue;
      entry.score = comparableScore(score);
      if (Number.isFinite(entry.score)) this.worstFinite = Math.min(this.worstFinite, entry.score);
    }
    if (this.queue.length > 0 || [...this.waiting.values()].some((w) => w.score === undefined)) return;
    const entries = [...this.waiting.values()];
    this.waiting.clear();
    if (entries.length === 1 && entries[0]!.role === "step")
      this.afterStep(entries[0]!.candidate.x, entries[0]!.score!);
    else this.afterDesign(entries);
  }

  done(): boolean {
    return this.options.budget !== undefined && this.queue.asked >= this.options.budget;
  }

  /** Failed trials count as a little worse than the worst real score, so the model stays finite. */
  private finite(score: number): number {
    if (Number.isFinite(score)) return score;
    return Number.isFinite(this.worstFinite) ? this.worstFinite - 1 - Math.abs(this.worstFinite) : -1;
  }

  private push(role: "centre" | "plus" | "minus" | "step", axis: number, x: number[]): void {
    const candidate = this.queue.add(x);
    this.waiting.set(candidate.id, { role, axis, candidate });
  }

  private queueDesign(): void {
    if (this.centreScore === undefined) this.push("centre", -1, this.centre.slice());
    for (let i = 0; i < this.d; i++) {
      const [minus, plus] = this.axisPoints(i);
      const up = this.centre.slice();
      up[i] = plus;
      const down = this.centre.slice();
      down[i] = minus;
      this.push("plus", i, up);
      this.push("minus", i, down);
    }
  }

  /** Two distinct positions along axis i around the centre, inside [0,1]. */
  private axisPoints(i: number): [number, number] {
    const c = this.centre[i]!;
    const r = Math.min(this.radius, 0.5);
    if (c - r < 0) return [c + r, Math.min(1, c + 2 * r)];
    if (c + r > 1) return [Math.max(0, c - 2 * r), c - r];
    return [c - r, c + r];
  }

  private afterDesign(
    entries: readonly { role: string; axis: number; candidate: Candidate; score?: number }[],
  ): void {
    const centre = entries.find((e) => e.role === "centre");
    if (centre) this.centreScore = this.finite(centre.score!);
    const f0 = this.centreScore!;
    const step = this.centre.slice();
    let predicted = 0;
    for (let i = 0; i < this.d; i++) {
      const a = entries.find((e) => e.role === "minus" && e.axis === i)!;
      const b = entries.find((e) => e.role === "plus" && e.axis === i)!;
      // Parabola through (c, f0), (xa, fa), (xb, fb), in s = x − c.
      const c = this.centre[i]!;
      const sa = a.candidate.x[i]! - c;
      const sb = b.candidate.x[i]! - c;
      const da = (this.finite(a.score!) - f0) / sa;
      const db = (this.finite(b.score!) - f0) / sb;
      const h = (2 * (db - da)) / (sb - sa);
      const g = da - (h * sa) / 2;
      const low = Math.max(0, c - 2 * this.radius) - c;
      const high = Math.min(1, c + 2 * this.radius) - c;
      const model = (s: number): number => g * s + 0.5 * h * s * s;
      let s = h < 0 ? Math.min(high, Math.max(low, -g / h)) : model(high) >= model(low) ? high : low;
      if (!Number.isFinite(s)) s = 0;
      step[i] = c + s;
      predicted += model(s);
    }
    this.predictedGain = predicted;
    this.push("step", -1, step);
  }

  private afterStep(x: readonly number[], score: number): void {
    const actual = this.finite(score) - this.centreScore!;
    const rho = this.predictedGain > 0 ? actual / this.predictedGain : actual > 0 ? 1 : 0;
    if (actual > 0) {
      this.centre = x.slice();
      this.centreScore = this.finite(score);
    }
    if (rho > 0.75) this.radius = Math.min(MAX_RADIUS, this.radius * 2);
    else if (rho < 0.25) this.radius = Math.max(MIN_RADIUS, this.radius / 2);
    this.queueDesign();
  }
}
