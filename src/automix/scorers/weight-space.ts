import { analysisKeys } from "../../analysis/analysis-keys.js";
import { readSamples, type SamplePlan, samplePlan } from "../../analysis/sample-plan.js";
import { GyozaError, throwIfAborted } from "../../errors.js";
import { openCheckpoint } from "../../io/open-checkpoint.js";
import { loadKernel } from "../../kernels/index.js";
import type { MergeKernel } from "../../kernels/merge-kernel.js";
import type { CandidateModel, ScoreOptions, WeightScorer } from "./scorer.js";

/** Elements sampled from the chosen blocks by default (256 Ki f32 = 1 MiB per model). */
export const DEFAULT_WEIGHT_SCORER_SAMPLES = 1 << 18;

export interface WeightSpaceScorerOptions {
  readonly name?: string;
  /** The model the candidate should be like. */
  readonly target: string;
  /** Blocks compared (BASE, IN00 … OUT11, as `gyoza diff` names them); empty or absent = every block. */
  readonly blocks?: readonly string[];
  /** Elements sampled over the chosen blocks' tensors (the analysis sample plan); default 2^18. */
  readonly samples?: number;
  readonly kernel?: MergeKernel;
}

interface Prepared {
  readonly plan: SamplePlan;
  readonly target: Float32Array;
  /** Per block: the plan's sample ranges [begin, end) in the sample vector. */
  readonly blocks: readonly { name: string; ranges: [number, number][] }[];
  readonly kernel: MergeKernel;
}

/**
 * Closeness to a target model in chosen blocks: a weight-space objective that needs no images
 * ("make A+B behave like C in the OUT blocks"; the tests' and the demo's objective). The target's
 * tensors of those blocks are sampled once with the analysis sample plan (src/analysis/sample-plan:
 * row-sized runs spread evenly over every tensor), the candidate at the same places, and the score
 * is minus the mean over blocks of ‖target − candidate‖ / ‖target‖ (gyoza diff's relative L2, on
 * the samples): 0 when the candidate equals the target there, lower the further it is.
 * Deterministic; reads about 1 MiB per candidate by default.
 */
export function weightSpaceScorer(options: WeightSpaceScorerOptions): WeightScorer {
  let prepared: Promise<Prepared> | undefined;
  return {
    name: options.name ?? "weights",
    kind: "weights",
    async score(candidate: CandidateModel, scoreOptions: ScoreOptions = {}): Promise<number[]> {
      throwIfAborted(scoreOptions.signal);
      prepared ??= prepare(options);
      const { plan, target, blocks, kernel } = await prepared;
      const model = await openCheckpoint(candidate.path);
      let samples: Float32Array;
      try {
        samples = await readSamples(model, plan, kernel);
      } finally {
        await model.close();
      }
      let total = 0;
      for (const block of blocks) {
        let distance = 0;
        let norm = 0;
        for (const [begin, end] of block.ranges) {
          for (let i = begin; i < end; i++) {
            const t = target[i]!;
            const c = samples[i]!;
            if (Number.isNaN(c))
              throw new GyozaError(
                "architecture-mismatch",
                `the candidate lacks tensors of block ${block.name} that the target has`,
                {
                  file: candidate.path,
                },
              );
            distance += (t - c) * (t - c);
            norm += t * t;
          }
        }
        total += norm > 0 ? Math.sqrt(distance / norm) : Math.sqrt(distance);
      }
      return [-(total / blocks.length)];
    },
  };
}

async function prepare(options: WeightSpaceScorerOptions): Promise<Prepared> {
  const kernel = options.kernel ?? (await loadKernel());
  const target = await openCheckpoint(options.target);
  try {
    const { keys } = analysisKeys([target]);
    const present = [...new Set(keys.map((key) => key.slot).filter((slot): slot is string => slot !== null))];
    const wanted = options.blocks && options.blocks.length > 0 ? options.blocks : present;
    const missing = wanted.filter((block) => !present.includes(block));
    if (missing.length > 0)
      throw new GyozaError(
        "usage",
        `the weight-space scorer's blocks ${missing.join(", ")} are not in the target model`,
        {
          file: options.target,
          fix: `name blocks it has: ${present.join(", ")}`,
        },
      );
    const chosen = keys.filter((key) => key.slot !== null && wanted.includes(key.slot));
    const plan = samplePlan(chosen, options.samples ?? DEFAULT_WEIGHT_SCORER_SAMPLES);
    const ranges = new Map<string, [number, number][]>(wanted.map((block) => [block, []]));
    for (const entry of plan.keys) {
      const length = entry.runs.reduce((sum, [begin, end]) => sum + end - begin, 0);
      ranges.get(entry.key.slot!)!.push([entry.offset, entry.offset + length]);
    }
    const samples = await readSamples(target, plan, kernel);
    return {
      plan,
      target: samples,
      blocks: wanted.map((name) => ({ name, ranges: ranges.get(name)! })),
      kernel,
    };
  } finally {
    await target.close();
  }
}
