import { basename } from "node:path";
import type { Checkpoint } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { type BlockRule, slotsOf } from "../merge/slots.js";
import type { ProgressListener } from "../progress.js";
import { analysisKeys } from "./analysis-keys.js";
import { type Recovery, recoverWeights } from "./recover-weights.js";
import { DEFAULT_SAMPLE_ELEMENTS, readSamples, samplePlan } from "./sample-plan.js";
import { residualOf } from "./solve-slot.js";

/** A candidate whose samples differ from the merged model's by less than this (relative L2) is a copy, not a parent. */
const COPY_DISTANCE = 1e-6;
/** Pairs checked exactly (every element) after the sampled ranking, by default. */
export const DEFAULT_EXACT_PAIRS = 3;

export interface PairScore {
  readonly a: string;
  readonly b: string;
  /** √(unexplained / ‖M − A‖²) over the samples: 0 = a weighted sum of A and B explains M fully. */
  readonly sampledResidual: number;
  /** The exact recovery, for the best pairs. */
  readonly recovery?: Recovery;
}

export interface CandidateScore {
  readonly path: string;
  /** The best sampled residual of any pair holding this candidate (lower explains more). */
  readonly bestResidual: number;
  /** Relative L2 distance of its samples from the merged model's. */
  readonly distance: number;
  /** True when it is the merged model itself (or a copy): excluded from pairs. */
  readonly copy: boolean;
}

export interface ParentRanking {
  readonly candidates: readonly CandidateScore[];
  readonly pairs: readonly PairScore[];
  /** Files that could not be compared (another architecture, unreadable), with why. */
  readonly skipped: readonly { path: string; reason: string }[];
  readonly sampledElements: number;
}

export interface RankParentsOptions {
  kernel: MergeKernel;
  rule?: BlockRule;
  sampleElements?: number;
  exactPairs?: number;
  onProgress?: ProgressListener;
}

/**
 * Ranks candidate parents of `merged`: one sampled pass per candidate (the same element runs of
 * every key), a per-block least-squares fit on the samples for every pair, then exact recovery
 * (all elements) for the best pairs.
 */
export async function rankParents(
  merged: Checkpoint,
  candidates: readonly Checkpoint[],
  options: RankParentsOptions,
): Promise<ParentRanking> {
  const onProgress = options.onProgress ?? (() => {});
  const plan = analysisKeys([merged], options.rule ?? "classic");
  const family = plan.family;
  const keys = plan.keys.filter((key) => key.slot !== null && key.component !== "vae");
  const samples = samplePlan(keys, options.sampleElements ?? DEFAULT_SAMPLE_ELEMENTS);
  const slotNames = family ? slotsOf(family) : [];
  const slotOfSample = new Uint8Array(samples.length);
  for (const entry of samples.keys) {
    const length = entry.runs.reduce((sum, [begin, end]) => sum + end - begin, 0);
    slotOfSample.fill(slotNames.indexOf(entry.key.slot!), entry.offset, entry.offset + length);
  }
  const usable: { model: Checkpoint; values: Float32Array }[] = [];
  const skipped: { path: string; reason: string }[] = [];
  const mergedValues = await readSamples(merged, samples, options.kernel);
  onProgress({ type: "start", task: "sample", totalBytes: candidates.length * samples.length * 2 });
  for (const model of candidates) {
    try {
      analysisKeys([merged, model], options.rule ?? "classic");
      usable.push({ model, values: await readSamples(model, samples, options.kernel, onProgress) });
    } catch (error) {
      skipped.push({ path: model.path, reason: (error as Error).message });
    }
  }
  onProgress({ type: "finish", task: "sample" });
  const distance = usable.map(({ values }) => relativeDistance(mergedValues, values));
  const copy = distance.map((d) => d < COPY_DISTANCE);
  const pairs: { i: number; j: number; residual: number }[] = [];
  for (let i = 0; i < usable.length; i++) {
    for (let j = i + 1; j < usable.length; j++) {
      if (copy[i] || copy[j]) continue;
      const residual = pairResidual(
        mergedValues,
        usable[i]!.values,
        usable[j]!.values,
        slotOfSample,
        slotNames.length,
      );
      pairs.push({ i, j, residual });
    }
  }
  pairs.sort((x, y) => x.residual - y.residual);
  const exact = options.exactPairs ?? DEFAULT_EXACT_PAIRS;
  const scored: PairScore[] = [];
  for (const [rank, pair] of pairs.entries()) {
    const a = usable[pair.i]!.model;
    const b = usable[pair.j]!.model;
    const recovery =
      rank < exact && family
        ? await recoverWeights(merged, [a, b], { kernel: options.kernel, rule: options.rule, onProgress })
        : undefined;
    scored.push({ a: a.path, b: b.path, sampledResidual: pair.residual, ...(recovery ? { recovery } : {}) });
  }
  // exact residuals, where known, decide the order of the pairs checked
  scored.sort(
    (x, y) => (x.recovery?.residual ?? x.sampledResidual) - (y.recovery?.residual ?? y.sampledResidual),
  );
  const ranked = usable
    .map(({ model }, i) => ({
      path: model.path,
      bestResidual: Math.min(
        Number.POSITIVE_INFINITY,
        ...pairs.filter((p) => p.i === i || p.j === i).map((p) => p.residual),
      ),
      distance: distance[i]!,
      copy: copy[i]!,
    }))
    .sort((x, y) => x.bestResidual - y.bestResidual || basename(x.path).localeCompare(basename(y.path)));
  return { candidates: ranked, pairs: scored, skipped, sampledElements: samples.length };
}

function relativeDistance(reference: Float32Array, values: Float32Array): number {
  let distance = 0;
  let norm = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i]!;
    const d = r - values[i]!;
    if (Number.isNaN(d)) continue;
    distance += d * d;
    norm += r * r;
  }
  return norm > 0 ? Math.sqrt(distance / norm) : distance > 0 ? 1 : 0;
}

/** Per block: the best α for M − A ≈ α (B − A), then what is left over ‖M − A‖², pooled over blocks. */
function pairResidual(
  m: Float32Array,
  a: Float32Array,
  b: Float32Array,
  slotOf: Uint8Array,
  slots: number,
): number {
  const dot = new Float64Array(slots);
  const direction = new Float64Array(slots);
  const change = new Float64Array(slots);
  for (let i = 0; i < m.length; i++) {
    const y = m[i]! - a[i]!;
    const d = b[i]! - a[i]!;
    if (Number.isNaN(y) || Number.isNaN(d)) continue;
    const s = slotOf[i]!;
    dot[s] = dot[s]! + y * d;
    direction[s] = direction[s]! + d * d;
    change[s] = change[s]! + y * y;
  }
  let error = 0;
  let total = 0;
  for (let s = 0; s < slots; s++) {
    error += direction[s]! > 0 ? Math.max(0, change[s]! - dot[s]! ** 2 / direction[s]!) : change[s]!;
    total += change[s]!;
  }
  return residualOf(error, total);
}
