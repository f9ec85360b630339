import type { Candidate, Optimizer, OptimizerOptions, OptimizerSpace, TrialResult } from "./optimizer.js";
import { RandomSource } from "./random-source.js";

/** Uniform random search over the unit cube: the floor every other optimizer must beat. */
export class RandomSearch implements Optimizer {
  readonly name = "random" as const;
  private readonly random: RandomSource;
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
      const x = Array.from({ length: this.space.dimensions }, () => this.random.next());
      out.push({ id: this.nextId++, x });
    }
    return out;
  }

  tell(_results: readonly TrialResult[]): void {}

  done(): boolean {
    return this.options.budget !== undefined && this.nextId >= this.options.budget;
  }
}
