import { basename } from "node:path";
import { isGyozaError } from "../errors.js";
import type { Checkpoint } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { type BlockRule, slotsOf } from "../merge/slots.js";
import type { ProgressListener } from "../progress.js";
import { analysisKeys, describeShapeMismatches, shapeMismatches } from "./analysis-keys.js";
import { type Recovery, recoverWeights, VAE_GROUP } from "./recover-weights.js";
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
  /** Slots where A and B differ in the samples, so an α could be fitted; 0 = the fit says nothing. */
  readonly sampledSolvedSlots: number;
  /** The exact recovery, for the best pairs. */
  readonly recovery?: Recovery;
}

export interface CandidateScore {
  readonly path: string;
  /** The best sampled residual of any pair holding this candidate that solved a slot (lower explains more); null when none did. */
  readonly bestResidual: number | null;
  /** Relative L2 distance of its samples from the merged model's. */
  readonly distance: number;
  /** True when it is the merged model itself (or a copy): excluded from pairs. */
  readonly copy: boolean;
}

export interface ParentRanking {
  readonly candidates: readonly CandidateScore[];
  readonly pairs: readonly PairScore[];
  /** Files that are no candidates (another architecture, other tensor shapes, unreadable), with why. */
  readonly skipped: readonly SkippedCandidate[];
  readonly sampledElements: number;
  /** Block slots each pair is fitted on (26 for SD 1.x/2.x): the most a fit can solve. */
  readonly slotCount: number;
}

export interface SkippedCandidate {
  readonly path: string;
  readonly cause: "architecture" | "shapes" | "unreadable";
  readonly reason: string;
}

/** What orders two fits: any fit that solved a slot before one that solved none, then the lower residual. */
export interface FitOrder {
  readonly solvedSlots: number;
  readonly residual: number;
}

/**
 * Fits that solved no slot (A and B never differ where they could be compared) explain nothing,
 * whatever their residual: they rank after every fit that solved one.
 */
export function compareFits(x: FitOrder, y: FitOrder): number {
  return Number(x.solvedSlots === 0) - Number(y.solvedSlots === 0) || x.residual - y.residual;
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
  const skipped: SkippedCandidate[] = [];
  const mergedValues = await readSamples(merged, samples, options.kernel);
  const comparedKeys = keys.map((key) => key.key);
  onProgress({ type: "start", task: "sample", totalBytes: candidates.length * samples.length * 2 });
  for (const model of candidates) {
    try {
      analysisKeys([merged, model], options.rule ?? "classic");
    } catch (error) {
      const cause = isGyozaError(error, "architecture-mismatch") ? "architecture" : "unreadable";
      skipped.push({ path: model.path, cause, reason: (error as Error).message });
      continue;
    }
    const mismatches = shapeMismatches(merged, model, comparedKeys);
    if (mismatches.length > 0) {
      const reason = describeShapeMismatches(mismatches, comparedKeys.length);
      skipped.push({ path: model.path, cause: "shapes", reason });
      continue;
    }
    try {
      usable.push({ model, values: await readSamples(model, samples, options.kernel, onProgress) });
    } catch (error) {
      skipped.push({ path: model.path, cause: "unreadable", reason: (error as Error).message });
    }
  }
  onProgress({ type: "finish", task: "sample" });
  const distance = usable.map(({ values }) => relativeDistance(mergedValues, values));
  const copy = distance.map((d) => d < COPY_DISTANCE);
  const pairs: ({ i: number; j: number } & FitOrder)[] = [];
  for (let i = 0; i < usable.length; i++) {
    for (let j = i + 1; j < usable.length; j++) {
      if (copy[i] || copy[j]) continue;
      const fit = pairFit(mergedValues, usable[i]!.values, usable[j]!.values, slotOfSample, slotNames.length);
      pairs.push({ i, j, ...fit });
    }
  }
  pairs.sort(compareFits);
  const exact = options.exactPairs ?? DEFAULT_EXACT_PAIRS;
  const scored: PairScore[] = [];
  for (const [rank, pair] of pairs.entries()) {
    const a = usable[pair.i]!.model;
    const b = usable[pair.j]!.model;
    const recovery =
      rank < exact && family
        ? await recoverWeights(merged, [a, b], { kernel: options.kernel, rule: options.rule, onProgress })
        : undefined;
    scored.push({
      a: a.path,
      b: b.path,
      sampledResidual: pair.residual,
      sampledSolvedSlots: pair.solvedSlots,
      ...(recovery ? { recovery } : {}),
    });
  }
  // exact results, where known, decide the order of the pairs checked
  const order = (pair: PairScore): FitOrder =>
    pair.recovery
      ? { solvedSlots: pair.recovery.solvedSlots, residual: pair.recovery.residual }
      : { solvedSlots: pair.sampledSolvedSlots, residual: pair.sampledResidual };
  scored.sort((x, y) => compareFits(order(x), order(y)));
  const ranked = usable
    .map(({ model }, i) => {
      const best = pairs.find((p) => (p.i === i || p.j === i) && p.solvedSlots > 0);
      return {
        path: model.path,
        bestResidual: best?.residual ?? null,
        distance: distance[i]!,
        copy: copy[i]!,
      };
    })
    .sort(
      (x, y) =>
        (x.bestResidual ?? Number.POSITIVE_INFINITY) - (y.bestResidual ?? Number.POSITIVE_INFINITY) ||
        basename(x.path).localeCompare(basename(y.path)),
    );
  return {
    candidates: ranked,
    pairs: scored,
    skipped,
    sampledElements: samples.length,
    slotCount: slotNames.filter((slot) => slot !== VAE_GROUP).length,
  };
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

/**
 * Per block: the best α for M − A ≈ α (B − A), then what is left over ‖M − A‖², pooled over blocks;
 * and how many blocks had a B − A to fit an α to.
 */
function pairFit(
  m: Float32Array,
  a: Float32Array,
  b: Float32Array,
  slotOf: Uint8Array,
  slots: number,
): FitOrder {
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
  let solvedSlots = 0;
  for (let s = 0; s < slots; s++) {
    if (direction[s]! > 0) solvedSlots++;
    error += direction[s]! > 0 ? Math.max(0, change[s]! - dot[s]! ** 2 / direction[s]!) : change[s]!;
    total += change[s]!;
  }
  return { residual: residualOf(error, total), solvedSlots };
}
