/**
 * Optimizers for `gyoza automix` on synthetic objectives with a known optimum over SD 1.x's 26
 * block-weight slots (issue #24): how many trials each needs, and how good it gets at equal
 * budgets. Objectives (maximised; regret = optimum − true score of the best trial so far):
 *
 * - smooth:  −Σ wᵢ (xᵢ − x*ᵢ)², wᵢ in [0.5, 2], x* in [0.1, 0.9], 26 free slots.
 * - noisy:   smooth + Gaussian noise (σ = NOISE_SIGMA) on every observed score; the best trial is
 *            picked by its noisy score, its regret measured on the true one.
 * - grouped: the smooth objective with x* shared inside BASE / IN00–IN11 / M00 / OUT00–OUT11,
 *            searched as 4 grouped values (a search space with "IN blocks share one value").
 * - rotated: interacting blocks: −(x − x*)ᵀ R D Rᵀ (x − x*), R a fixed seeded chain of rotations
 *            between neighbouring slots (each by an angle in ±π/3), D's diagonal log-spaced
 *            over [0.5, 10] (condition number 20). Its optimum is smooth's x*; no optimizer's
 *            model is exact on it (quadratic's is separable, automb1 searches one block at a time).
 *
 * Optimizers: cmaes, tpe, quadratic (separable-model trust region), random, automb1.
 * The headline: automb1 (autoMBW v1's Binary Mid Pass) after two passes reaches some regret; the
 * trials each optimizer needs to match it, as a ratio to automb1's (goal: ≤ 1/3 for the default).
 *
 *   npm run bench:automix [-- --seeds 5 --budget 600 --json]
 */

import { AutoMbw1 } from "../src/automix/optimizers/automb1.js";
import { createOptimizer } from "../src/automix/optimizers/create-optimizer.js";
import type { Optimizer, OptimizerName } from "../src/automix/optimizers/optimizer.js";
import { RandomSource } from "../src/automix/optimizers/random-source.js";

const SLOTS = 26;
const NOISE_SIGMA = 0.02;
const EPSILONS = [0.1, 0.01] as const;
const CHECKPOINTS = [100, 300, 600] as const;
const OPTIMIZERS: readonly OptimizerName[] = ["cmaes", "tpe", "quadratic", "random", "automb1"];
/** The baseline's "final score": its regret after this many passes over the blocks. */
const BASELINE_PASSES = 2;

interface Objective {
  readonly name: string;
  readonly dimensions: number;
  /** Unit-cube point → the 26 slot values. */
  readonly toSlots: (x: readonly number[]) => number[];
  readonly noise: number;
  /** Optimum minus the true score of these slot values (≥ 0; 0 at the optimum). */
  readonly regret: (slots: readonly number[]) => number;
}

const fixed = new RandomSource(20261205);
const WEIGHTS = Array.from({ length: SLOTS }, () => 0.5 + 1.5 * fixed.next());
const OPTIMUM = Array.from({ length: SLOTS }, () => 0.1 + 0.8 * fixed.next());
/** BASE, IN00–IN11, M00, OUT00–OUT11 → group 0..3. */
const GROUP_OF = Array.from({ length: SLOTS }, (_, i) => (i === 0 ? 0 : i <= 12 ? 1 : i === 13 ? 2 : 3));
const GROUP_OPTIMUM = [0.3, 0.72, 0.15, 0.45];

/** The rotated objective's R (a seeded stream of its own, so the other objectives stay as they were). */
const rotation = new RandomSource(20261206);
/** Angles of the Givens rotations between slots i and i + 1, applied for i = 0 … 24 in order. */
const ANGLES = Array.from({ length: SLOTS - 1 }, () => (rotation.next() * 2 - 1) * (Math.PI / 3));
/** D's diagonal: 0.5 … 10, log-spaced (condition number 20), shuffled by the seeded stream. */
const CURVATURES = Array.from({ length: SLOTS }, (_, i) => 0.5 * 20 ** (i / (SLOTS - 1)))
  .map((value) => ({ value, key: rotation.next() }))
  .sort((a, b) => a.key - b.key)
  .map((entry) => entry.value);

function weightedSquares(slots: readonly number[], target: readonly number[]): number {
  return slots.reduce((sum, v, i) => sum + WEIGHTS[i]! * (v - target[i]!) ** 2, 0);
}

/** (x − x*)ᵀ R D Rᵀ (x − x*): Rᵀ is the rotation chain applied to x − x*, then D's weighted squares. */
function rotatedRegret(slots: readonly number[]): number {
  const y = slots.map((v, i) => v - OPTIMUM[i]!);
  for (let i = 0; i < SLOTS - 1; i++) {
    const c = Math.cos(ANGLES[i]!);
    const s = Math.sin(ANGLES[i]!);
    const [a, b] = [y[i]!, y[i + 1]!];
    y[i] = c * a + s * b;
    y[i + 1] = -s * a + c * b;
  }
  return y.reduce((sum, v, j) => sum + CURVATURES[j]! * v * v, 0);
}

const GROUPED_OPTIMUM = GROUP_OF.map((g) => GROUP_OPTIMUM[g]!);

const OBJECTIVES: readonly Objective[] = [
  {
    name: "smooth",
    dimensions: SLOTS,
    toSlots: (x) => [...x],
    noise: 0,
    regret: (slots) => weightedSquares(slots, OPTIMUM),
  },
  {
    name: "noisy",
    dimensions: SLOTS,
    toSlots: (x) => [...x],
    noise: NOISE_SIGMA,
    regret: (slots) => weightedSquares(slots, OPTIMUM),
  },
  {
    name: "grouped",
    dimensions: 4,
    toSlots: (x) => GROUP_OF.map((g) => x[g]!),
    noise: 0,
    regret: (slots) => weightedSquares(slots, GROUPED_OPTIMUM),
  },
  { name: "rotated", dimensions: SLOTS, toSlots: (x) => [...x], noise: 0, regret: rotatedRegret },
];

interface Run {
  /** Regret of the best-observed trial after each trial. */
  readonly curve: number[];
  /** automb1 only: trials when its second pass ended. */
  readonly baselineTrials?: number;
}

function runOne(objective: Objective, name: OptimizerName, seed: number, budget: number): Run {
  const optimizer: Optimizer = createOptimizer(name, { dimensions: objective.dimensions }, { seed, budget });
  const noise = new RandomSource(seed * 7919 + 1);
  const curve: number[] = [];
  let bestObserved = Number.NEGATIVE_INFINITY;
  let bestRegret = Number.POSITIVE_INFINITY;
  let baselineTrials: number | undefined;
  while (curve.length < budget) {
    const asked = optimizer.ask(1);
    if (asked.length === 0) break;
    const candidate = asked[0]!;
    const regret = objective.regret(objective.toSlots(candidate.x));
    const observed = -regret + objective.noise * noise.normal();
    if (observed > bestObserved) {
      bestObserved = observed;
      bestRegret = regret;
    }
    curve.push(bestRegret);
    optimizer.tell([{ candidate, score: observed }]);
    if (optimizer instanceof AutoMbw1 && baselineTrials === undefined && optimizer.passes >= BASELINE_PASSES)
      baselineTrials = curve.length;
  }
  return { curve, baselineTrials };
}

/** Trials until the curve is at or below `regret` (undefined: never within the budget). */
function trialsTo(curve: readonly number[], regret: number): number | undefined {
  const at = curve.findIndex((r) => r <= regret);
  return at < 0 ? undefined : at + 1;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "412 (5/5)", or "> 1000 (0/5)": the median over seeds that got there, and how many did. */
function trialsCell(counts: readonly (number | undefined)[], budget: number): string {
  const reached = counts.filter((c): c is number => c !== undefined);
  if (reached.length === 0) return `> ${budget} (0/${counts.length})`;
  return `${Math.round(median(reached))} (${reached.length}/${counts.length})`;
}

function argument(flag: string, fallback: number): number {
  const at = process.argv.indexOf(flag);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}

function main(): void {
  const seeds = argument("--seeds", 5);
  const budget = argument("--budget", 600);
  const json = process.argv.includes("--json");
  const runs = new Map<string, Run[]>();
  const total = OBJECTIVES.length * OPTIMIZERS.length * seeds;
  let done = 0;
  const started = performance.now();
  for (const objective of OBJECTIVES) {
    for (const name of OPTIMIZERS) {
      const list: Run[] = [];
      for (let seed = 1; seed <= seeds; seed++) {
        list.push(runOne(objective, name, seed, budget));
        done++;
        const seconds = ((performance.now() - started) / 1000).toFixed(0);
        process.stderr.write(
          `\r${objective.name} ${name} seed ${seed}: ${done}/${total} runs, ${seconds} s   `,
        );
      }
      runs.set(`${objective.name}/${name}`, list);
    }
  }
  process.stderr.write("\n");

  const rows = OBJECTIVES.flatMap((objective) => {
    const baseline = runs.get(`${objective.name}/automb1`)!;
    // Per seed: the regret automb1 has after two full passes, and the trials that run took.
    const targets = baseline.map((run) => {
      const trials = run.baselineTrials ?? run.curve.length;
      return { trials, regret: run.curve[trials - 1]! };
    });
    return OPTIMIZERS.map((name) => {
      const list = runs.get(`${objective.name}/${name}`)!;
      const matched = list.map((run, i) => {
        const trials = trialsTo(run.curve, targets[i]!.regret);
        return { trials, ratio: trials === undefined ? undefined : trials / targets[i]!.trials };
      });
      const ratios = matched.map((m) => m.ratio).filter((r): r is number => r !== undefined);
      return {
        objective: objective.name,
        optimizer: name,
        trialsToEpsilon: Object.fromEntries(
          EPSILONS.map((eps) => [eps, list.map((run) => trialsTo(run.curve, eps))]),
        ),
        regretAt: Object.fromEntries(
          CHECKPOINTS.filter((c) => c <= budget).map((c) => [
            c,
            median(list.map((run) => run.curve[Math.min(c, run.curve.length) - 1]!)),
          ]),
        ),
        baseline: {
          runTrials: median(targets.map((t) => t.trials)),
          regret: median(targets.map((t) => t.regret)),
          trials: matched.map((m) => m.trials),
          medianRatio: ratios.length === list.length ? median(ratios) : undefined,
        },
      };
    });
  });

  if (json) {
    process.stdout.write(`${JSON.stringify({ seeds, budget, noiseSigma: NOISE_SIGMA, rows }, null, 2)}\n`);
    return;
  }
  const checkpoints = CHECKPOINTS.filter((c) => c <= budget);
  console.log(
    `Synthetic objectives over 26 slots (grouped: 4 shared values; rotated: interacting neighbouring blocks, condition number 20), ${seeds} seeds, budget ${budget} trials, one trial at a time, noise σ ${NOISE_SIGMA}. Trials: median over the seeds that got there (how many did). Regret: median. Baseline: automb1's regret after ${BASELINE_PASSES} full passes; the ratio divides the trials an optimizer needs to reach it by the trials automb1's ${BASELINE_PASSES} passes took (per seed, median).\n`,
  );
  for (const objective of OBJECTIVES) {
    const row = rows.find((r) => r.objective === objective.name)!;
    console.log(
      `- ${objective.name}: automb1's ${BASELINE_PASSES} passes take ${row.baseline.runTrials} trials and reach regret ${row.baseline.regret.toFixed(4)}`,
    );
  }
  console.log();
  console.log(
    `| objective | optimizer | ${EPSILONS.map((e) => `trials to regret ≤ ${e}`).join(" | ")} | ${checkpoints
      .map((c) => `regret @${c}`)
      .join(
        " | ",
      )} | trials to automb1's ${BASELINE_PASSES}-pass regret | ÷ automb1's ${BASELINE_PASSES}-pass trials |`,
  );
  console.log(`|${" --- |".repeat(4 + EPSILONS.length + checkpoints.length)}`);
  for (const row of rows) {
    const eps = EPSILONS.map((e) => trialsCell(row.trialsToEpsilon[e]!, budget));
    const at = checkpoints.map((c) => row.regretAt[c]!.toFixed(4));
    const ratio = row.baseline.medianRatio;
    console.log(
      `| ${row.objective} | ${row.optimizer} | ${eps.join(" | ")} | ${at.join(" | ")} | ${trialsCell(
        row.baseline.trials,
        budget,
      )} | ${ratio === undefined ? "—" : ratio.toFixed(2)} |`,
    );
  }
}

main();
