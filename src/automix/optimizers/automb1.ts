/**
 * The autoMBW v1 baseline: its "Binary Mid Pass" search (Xerxemi/sdweb-auto-MBW,
 * scripts/auto_mbw.py, `binary_mid_pass`; README: "Binary Mid Pass … tests the lower, middle and
 * upper test values and keeps the half or middle around the best"), rewritten as ask/tell so it can
 * be compared with the other optimizers on equal terms. What is implemented, exactly:
 *
 * - Test values are autoMBW's default increments 0, 0.1, …, 1.0 (11 values) of each coordinate.
 * - Blocks (coordinates) are searched one at a time, in the space's order (autoMBW does BASE and
 *   M00 first, then IN00…OUT11; here the order is the search space's), the others held at their
 *   current values, which start at 0.5 (autoMBW starts at its sliders, default 0).
 * - For one block, with L the test values still in play: score L's first, middle
 *   (L[⌈|L|/2⌉ − 1]) and last values (scores already known in this block are reused, autoMBW's
 *   `carry_dict`, as is the current point's score carried from the previous block); the first is
 *   best → keep L[0 … ⌊|L|/2⌋); the middle → L[⌊|L|/4⌋ … |L| − ⌈|L|/4⌉) (Python's
 *   `l[len//4:-len//4]`); the last → L[⌊|L|/2⌋ … ]. Ties go to the first, then the middle. When one
 *   value is left the block takes it, and the next block starts.
 * - A pass visits every block once; passes repeat until the budget is spent (without a budget,
 *   one pass, autoMBW's default pass count). autoMBW's "score default" option and its quirk of
 *   carrying the block's best score rather than the kept value's are left out: the carried score
 *   is the kept point's own, when it was scored.
 *
 * Up to three candidates of one step are asked together (the lower, middle and upper values); the
 * next step needs their scores, so ask returns nothing until they are told.
 */

import { CandidateQueue } from "./candidate-queue.js";
import type { Candidate, Optimizer, OptimizerOptions, OptimizerSpace, TrialResult } from "./optimizer.js";
import { comparableScore } from "./optimizer.js";

const TEST_VALUES = Array.from({ length: 11 }, (_, i) => i / 10);
const START_VALUE = 0.5;

export class AutoMbw1 implements Optimizer {
  readonly name = "automb1" as const;
  private readonly point: number[];
  private block = 0;
  private passesDone = 0;
  private inPlay: number[] = TEST_VALUES.slice();
  /** Scores known for this block's test values (the rest of the point as it is now). */
  private known = new Map<number, number>();
  private waiting = new Map<number, { value: number; candidate: Candidate; score?: number }>();
  private readonly queue = new CandidateQueue();
  private finished = false;

  constructor(
    private readonly space: OptimizerSpace,
    private readonly options: OptimizerOptions,
  ) {
    this.point = new Array<number>(space.dimensions).fill(START_VALUE);
    this.planStep();
  }

  ask(count: number): Candidate[] {
    return this.queue.take(count, () => this.done());
  }

  tell(results: readonly TrialResult[]): void {
    for (const { candidate, score } of results) {
      const entry = this.waiting.get(candidate.id);
      if (entry) entry.score = comparableScore(score);
    }
    if (this.queue.length > 0 || [...this.waiting.values()].some((w) => w.score === undefined)) return;
    for (const { value, score } of this.waiting.values()) this.known.set(value, score!);
    this.waiting.clear();
    this.decide();
    this.planStep();
  }

  done(): boolean {
    return this.finished || (this.options.budget !== undefined && this.queue.asked >= this.options.budget);
  }

  /** Passes over every block finished so far. */
  get passes(): number {
    return this.passesDone;
  }

  /** The point the search holds now (its answer). */
  get current(): readonly number[] {
    return this.point;
  }

  private probes(): number[] {
    const l = this.inPlay;
    return [...new Set([l[0]!, l[Math.ceil(l.length / 2) - 1]!, l[l.length - 1]!])];
  }

  /** Queues the probes this step still needs; moves on when the block is decided. */
  private planStep(): void {
    for (;;) {
      if (this.inPlay.length === 1) {
        if (!this.nextBlock()) return;
        continue;
      }
      const missing = this.probes().filter((v) => !this.known.has(v));
      if (missing.length === 0) {
        this.decide();
        continue;
      }
      for (const value of missing) {
        const x = this.point.slice();
        x[this.block] = value;
        const candidate = this.queue.add(x);
        this.waiting.set(candidate.id, { value, candidate });
      }
      return;
    }
  }

  private decide(): void {
    const l = this.inPlay;
    const lower = this.known.get(l[0]!)!;
    const middle = this.known.get(l[Math.ceil(l.length / 2) - 1]!)!;
    const upper = this.known.get(l[l.length - 1]!)!;
    const best = Math.max(lower, middle, upper);
    if (lower === best) this.inPlay = l.slice(0, Math.floor(l.length / 2));
    else if (middle === best)
      this.inPlay = l.slice(Math.floor(l.length / 4), l.length - Math.ceil(l.length / 4));
    else this.inPlay = l.slice(Math.floor(l.length / 2));
  }

  /** Fixes the block at its remaining value and starts the next one; false when the search is over. */
  private nextBlock(): boolean {
    const kept = this.inPlay[0]!;
    this.point[this.block] = kept;
    const keptScore = this.known.get(kept);
    this.block++;
    if (this.block === this.space.dimensions) {
      this.block = 0;
      this.passesDone++;
      if (this.options.budget === undefined) {
        this.finished = true;
        return false;
      }
    }
    this.inPlay = TEST_VALUES.slice();
    this.known = new Map();
    if (keptScore !== undefined) this.known.set(this.point[this.block]!, keptScore);
    return true;
  }
}
