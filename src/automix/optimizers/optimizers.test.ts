import { describe, expect, it } from "vitest";
import { isGyozaError } from "../../errors.js";
import { createOptimizer, replayOptimizer } from "./create-optimizer.js";
import { OPTIMIZER_NAMES, type Optimizer, type OptimizerEvent } from "./optimizer.js";

const DIMENSIONS = 8;
const OPTIMUM = Array.from({ length: DIMENSIONS }, (_, i) => 0.15 + (0.7 * i) / (DIMENSIONS - 1));
const quadratic = (x: readonly number[]): number => -x.reduce((sum, v, i) => sum + (v - OPTIMUM[i]!) ** 2, 0);

/** Runs `optimizer` for `budget` trials, `batch` at a time, and returns every score in tell order. */
function run(optimizer: Optimizer, budget: number, batch = 1, events?: OptimizerEvent[]): number[] {
  const scores: number[] = [];
  while (scores.length < budget) {
    const asked = optimizer.ask(Math.min(batch, budget - scores.length));
    events?.push({ kind: "ask", count: Math.min(batch, budget - scores.length) });
    if (asked.length === 0) break;
    const results = asked.map((candidate) => ({ candidate, score: quadratic(candidate.x) }));
    optimizer.tell(results);
    events?.push({ kind: "tell", results: results.map((r) => ({ id: r.candidate.id, score: r.score })) });
    scores.push(...results.map((r) => r.score));
  }
  return scores;
}

const best = (scores: readonly number[], upTo = scores.length): number => Math.max(...scores.slice(0, upTo));
const space = { dimensions: DIMENSIONS };

describe("optimizers", () => {
  it.each(["cmaes", "tpe", "automb1"] as const)(
    "%s beats its own first ten trials on a quadratic within 300 trials",
    (name) => {
      const scores = run(createOptimizer(name, space, { seed: 7, budget: 300 }), 300);
      const start = -OPTIMUM.reduce((s, v) => s + (0.5 - v) ** 2, 0);
      expect(best(scores)).toBeGreaterThan(best(scores, 10));
      expect(best(scores)).toBeGreaterThan(start / 10);
    },
  );

  it("CMA-ES and TPE beat random search at equal budget on a quadratic, over three seeds", () => {
    for (const seed of [1, 2, 3]) {
      const random = best(run(createOptimizer("random", space, { seed, budget: 200 }), 200));
      for (const name of ["cmaes", "tpe"] as const)
        expect(best(run(createOptimizer(name, space, { seed, budget: 200 }), 200))).toBeGreaterThan(random);
    }
  });

  it("the quadratic trust region lands on a separable quadratic's optimum after one design (2d + 2 trials)", () => {
    const scores = run(
      createOptimizer("quadratic", space, { seed: 1, budget: 2 * DIMENSIONS + 2 }),
      2 * DIMENSIONS + 2,
    );
    expect(best(scores)).toBeGreaterThan(-1e-9);
  });

  it("the quadratic trust region asks its whole design as one batch, then one step", () => {
    const optimizer = createOptimizer("quadratic", space, { seed: 1 });
    const design = optimizer.ask(100);
    expect(design).toHaveLength(2 * DIMENSIONS + 1);
    expect(optimizer.ask(1)).toEqual([]);
    optimizer.tell(design.map((candidate) => ({ candidate, score: quadratic(candidate.x) })));
    expect(optimizer.ask(100)).toHaveLength(1);
  });

  it("CMA-ES gets within 1e-3 of the optimum of an 8-value quadratic in 600 trials", () => {
    expect(best(run(createOptimizer("cmaes", space, { seed: 3, budget: 600 }), 600))).toBeGreaterThan(-1e-3);
  });

  it.each(OPTIMIZER_NAMES)(
    "%s is deterministic: the same seed and scores give the same candidates",
    (name) => {
      const first = createOptimizer(name, space, { seed: 11, budget: 60 });
      const second = createOptimizer(name, space, { seed: 11, budget: 60 });
      expect(run(first, 60, 4)).toEqual(run(second, 60, 4));
      const other = createOptimizer(name, space, { seed: 12, budget: 60 });
      // automb1 and quadratic use no randomness: the seed changes nothing.
      if (name !== "automb1" && name !== "quadratic")
        expect(run(other, 60, 4)).not.toEqual(run(createOptimizer(name, space, { seed: 11 }), 60, 4));
    },
  );

  it.each(OPTIMIZER_NAMES)(
    "%s resumes: replaying the recorded asks and tells gives the same next candidates",
    (name) => {
      const events: OptimizerEvent[] = [];
      const original = createOptimizer(name, space, { seed: 5, budget: 100, batch: 3 });
      run(original, 40, 3, events);
      // A batch asked but never told (the coordinator died while it ran).
      const inFlight = original.ask(2);
      events.push({ kind: "ask", count: 2 });
      const resumed = createOptimizer(name, space, { seed: 5, budget: 100, batch: 3 });
      const pending = replayOptimizer(resumed, events);
      expect(pending).toEqual(inFlight);
      const told = inFlight.map((candidate) => ({ candidate, score: quadratic(candidate.x) }));
      original.tell(told);
      resumed.tell(told);
      expect(resumed.ask(3)).toEqual(original.ask(3));
    },
  );

  it("refuses to replay a record that tells a trial the optimizer never asked for", () => {
    const optimizer = createOptimizer("random", space, { seed: 1 });
    expect(() => replayOptimizer(optimizer, [{ kind: "tell", results: [{ id: 4, score: 1 }] }])).toThrow(
      /never asked for/,
    );
  });

  it.each(OPTIMIZER_NAMES)(
    "%s keeps every candidate inside the unit cube, even with the optimum on its corner",
    (name) => {
      const optimizer = createOptimizer(name, space, { seed: 9, budget: 200 });
      for (let trial = 0; trial < 200; ) {
        const asked = optimizer.ask(5);
        if (asked.length === 0) break;
        for (const c of asked) {
          expect(c.x).toHaveLength(DIMENSIONS);
          for (const v of c.x) expect(v >= 0 && v <= 1).toBe(true);
        }
        optimizer.tell(
          asked.map((candidate) => ({ candidate, score: candidate.x.reduce((s, v) => s + v, 0) })),
        );
        trial += asked.length;
      }
    },
  );

  it.each(["cmaes", "tpe", "random"] as const)(
    "%s hands out distinct candidates in a batched ask",
    (name) => {
      const optimizer = createOptimizer(name, space, { seed: 4, batch: 8 });
      for (let round = 0; round < 5; round++) {
        const asked = optimizer.ask(8);
        expect(asked).toHaveLength(8);
        expect(new Set(asked.map((c) => c.x.join(","))).size).toBe(8);
        expect(new Set(asked.map((c) => c.id)).size).toBe(8);
        optimizer.tell(asked.map((candidate) => ({ candidate, score: quadratic(candidate.x) })));
      }
    },
  );

  it("CMA-ES rounds its population up to a multiple of the batch so a worker pool stays busy", () => {
    // d = 8: the tutorial's λ is 10; batches of 8 make it 16, of 20 make it 20.
    expect(createOptimizer("cmaes", space, { seed: 1 }).ask(100)).toHaveLength(10);
    expect(createOptimizer("cmaes", space, { seed: 1, batch: 8 }).ask(100)).toHaveLength(16);
    const optimizer = createOptimizer("cmaes", space, { seed: 1, batch: 20 });
    expect(optimizer.ask(100)).toHaveLength(20);
    expect(optimizer.ask(1)).toHaveLength(0);
  });

  it("autoMBW's baseline asks lower, middle and upper, then waits for their scores", () => {
    const optimizer = createOptimizer("automb1", space, { seed: 1 });
    const first = optimizer.ask(10);
    expect(first.map((c) => c.x[0])).toEqual([0, 0.5, 1]);
    expect(first.every((c) => c.x.slice(1).every((v) => v === 0.5))).toBe(true);
    expect(optimizer.ask(1)).toEqual([]);
    // Upper best → keep 0.5 … 1.0; its scores at 0.5 and 1.0 are known, so only the new middle is asked.
    optimizer.tell(first.map((candidate) => ({ candidate, score: candidate.x[0]! })));
    expect(optimizer.ask(10).map((c) => c.x[0])).toEqual([0.7]);
  });

  it("autoMBW's baseline finishes after one pass when it has no budget", () => {
    const optimizer = createOptimizer("automb1", { dimensions: 3 }, { seed: 1 });
    const scores = run(optimizer, 1000, 3);
    expect(optimizer.done?.()).toBe(true);
    expect(scores.length).toBeLessThan(3 * 11);
  });

  it("treats a failed trial (NaN) as worse than every real score", () => {
    const optimizer = createOptimizer("automb1", { dimensions: 1 }, { seed: 1 });
    const first = optimizer.ask(3);
    // NaN at 1.0 must not win: the middle (0.5) is best, so 0.2 … 0.7 stay in play.
    const score = (x: number): number => (x === 1 ? Number.NaN : x === 0.5 ? -0.5 : -1);
    optimizer.tell(first.map((candidate) => ({ candidate, score: score(candidate.x[0]!) })));
    expect(optimizer.ask(10).map((c) => c.x[0])).toEqual([0.2, 0.4, 0.7]);
  });

  it("rejects an unknown optimizer name with a suggestion", () => {
    try {
      createOptimizer("cmaess", space, { seed: 1 });
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "unknown-id")).toBe(true);
      expect((error as Error & { fix: string }).fix).toMatch(/did you mean "cmaes"/);
    }
  });

  it("TPE proposes categorical coordinates only at bucket centres", () => {
    const optimizer = createOptimizer("tpe", { dimensions: 2, categories: [0, 3] }, { seed: 2, budget: 40 });
    const seen = new Set<number>();
    run(optimizer, 40, 2);
    const more = optimizer.ask(5);
    for (const c of more) seen.add(c.x[1]!);
    for (const v of seen)
      expect([1 / 6, 0.5, 5 / 6].some((centre) => Math.abs(centre - v) < 1e-12)).toBe(true);
  });
});

describe("optimizer budgets", () => {
  it.each(["cmaes", "tpe", "random", "quadratic"] as const)(
    "%s hands out exactly its budget when asked one at a time, even when the budget ends mid-generation",
    (name) => {
      for (const budget of [7, 12, 30]) {
        expect(run(createOptimizer(name, space, { seed: 3, budget }), budget + 10)).toHaveLength(budget);
      }
    },
  );
});
