import { diffModels } from "../../analysis/diff-models.js";
import { GyozaError, throwIfAborted } from "../../errors.js";
import { openCheckpoint } from "../../io/open-checkpoint.js";
import { loadKernel } from "../../kernels/index.js";
import type { MergeKernel } from "../../kernels/merge-kernel.js";
import type { CandidateModel, ScoreOptions, WeightScorer } from "./scorer.js";

export interface WeightSpaceScorerOptions {
  readonly name?: string;
  /** The model the candidate should be like. */
  readonly target: string;
  /** Blocks compared (BASE, IN00 … OUT11; as `gyoza diff` names them); empty or absent = the whole model. */
  readonly blocks?: readonly string[];
  readonly kernel?: MergeKernel;
}

/**
 * Closeness to a target model in chosen blocks, a weight-space objective that needs no images
 * ("make A+B behave like C in the OUT blocks"; the tests' and demo's objective). The score is minus
 * the mean, over the chosen blocks, of ‖target − candidate‖ / ‖target‖ (gyoza diff's relative L2,
 * from the same streaming pass): 0 when the candidate equals the target there, lower the further
 * it is. Deterministic, and a few milliseconds on the micro synthetic models.
 */
export function weightSpaceScorer(options: WeightSpaceScorerOptions): WeightScorer {
  const blocks = options.blocks ?? [];
  let kernel: MergeKernel | undefined = options.kernel;
  return {
    name: options.name ?? "weights",
    kind: "weights",
    async score(candidate: CandidateModel, scoreOptions: ScoreOptions = {}): Promise<number[]> {
      throwIfAborted(scoreOptions.signal);
      kernel ??= await loadKernel();
      const [target, model] = [await openCheckpoint(options.target), await openCheckpoint(candidate.path)];
      try {
        const diff = await diffModels(target, model, { kernel });
        if (blocks.length === 0) return [-diff.total.relativeL2];
        const byName = new Map(diff.blocks.map((block) => [block.name, block]));
        const missing = blocks.filter((block) => !byName.has(block) || byName.get(block)!.elements === 0);
        if (missing.length > 0)
          throw new GyozaError(
            "usage",
            `the weight-space scorer's blocks ${missing.join(", ")} are not in the target model`,
            {
              file: options.target,
              fix: `name blocks gyoza diff lists: ${diff.blocks.map((b) => b.name).join(", ")}`,
            },
          );
        const mean = blocks.reduce((sum, block) => sum + byName.get(block)!.relativeL2, 0) / blocks.length;
        return [-mean];
      } finally {
        await Promise.all([target.close(), model.close()]);
      }
    },
  };
}
