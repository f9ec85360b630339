import type { Candidate } from "./optimizer.js";

/**
 * Candidates planned ahead and handed out in order, for optimizers that plan a whole step at once
 * (automb1's probes, the quadratic trust region's design) and hand it out across asks. Ids count up
 * from 0 in plan order, so a candidate's id is fixed when it is planned, and `asked` (the next id
 * to hand out) is what a budget is checked against. One copy of this bookkeeping: automb1 and
 * quadratic-trust-region had the same loop each (flagged by the duplicates check).
 */
export class CandidateQueue {
  private readonly planned: Candidate[] = [];
  private handedOut = 0;

  /** Candidates handed out by take so far (also the id of the next one to hand out). */
  get asked(): number {
    return this.handedOut;
  }

  /** Planned candidates not yet handed out. */
  get length(): number {
    return this.planned.length;
  }

  /** Plans a candidate at `x`; its id follows every candidate handed out or planned before it. */
  add(x: readonly number[]): Candidate {
    const candidate = { id: this.handedOut + this.planned.length, x };
    this.planned.push(candidate);
    return candidate;
  }

  /** Up to `count` planned candidates in plan order, stopping as soon as `done()` says so. */
  take(count: number, done: () => boolean): Candidate[] {
    const out: Candidate[] = [];
    while (out.length < count && this.planned.length > 0 && !done()) {
      const candidate = this.planned.shift()!;
      this.handedOut = candidate.id + 1;
      out.push(candidate);
    }
    return out;
  }
}
