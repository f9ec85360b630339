import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { ProgressListener } from "../progress.js";
import { alignedBytes, alignedChunks } from "./aligned-chunks.js";
import type { AnalysisKey } from "./analysis-keys.js";
import { createSimdSums } from "./simd-sums.js";

/** How a merge moved away from its first parent: `M − A = α · direction`. */
export type MergeMode = "weighted_sum" | "add_difference";

/**
 * Least-squares statistics of one key, accumulated in float64 while streaming: with the change
 * `y = M − A` and the direction `d = B − A` (weighted sum) or `d = B − C` (add difference),
 * the best α is ⟨y, d⟩ / ‖d‖² and what it leaves unexplained is ‖y‖² − ⟨y, d⟩² / ‖d‖².
 */
export interface KeyFit {
  readonly key: AnalysisKey;
  /** ⟨y, d⟩ */
  dot: number;
  /** ‖d‖² */
  direction: number;
  /** ‖y‖² */
  change: number;
}

/** The best α of a key (null when the parents do not differ there, so any α fits). */
export function fitAlpha(fit: Pick<KeyFit, "dot" | "direction">): number | null {
  return fit.direction > 0 ? fit.dot / fit.direction : null;
}

/** ‖y − α d‖² for a given α (never negative, despite rounding). */
export function squaredError(fit: Pick<KeyFit, "dot" | "direction" | "change">, alpha: number): number {
  return Math.max(0, fit.change - 2 * alpha * fit.dot + alpha * alpha * fit.direction);
}

/**
 * One streaming pass over the merged model and its parents (models in order M, A, B[, C]) that
 * fills a KeyFit per key. Progress reports the bytes read from all files.
 */
export async function measureKeyFits(
  keys: readonly AnalysisKey[],
  mode: MergeMode,
  kernel: MergeKernel,
  onProgress: ProgressListener = () => {},
): Promise<KeyFit[]> {
  const fits: KeyFit[] = keys.map((key) => ({ key, dot: 0, direction: 0, change: 0 }));
  onProgress({ type: "start", task: "recover", totalBytes: alignedBytes(keys) });
  const simd = createSimdSums();
  const chunks = alignedChunks(keys, kernel, onProgress, simd ? { allocate: simd.allocate } : {});
  for await (const { keyIndex, values } of chunks) {
    const [m, a, b, c] = values as [Float32Array, Float32Array, Float32Array, Float32Array?];
    const from = mode === "add_difference" && c ? c : a;
    const sums = simd
      ? simd.sums(m, a, b, from)
      : from === a
        ? weightedSumSums(m, a, b)
        : addDifferenceSums(m, a, b, from);
    const fit = fits[keyIndex]!;
    fit.dot += sums[0];
    fit.direction += sums[1];
    fit.change += sums[2];
  }
  onProgress({ type: "finish", task: "recover" });
  return fits;
}

/** ⟨y, d⟩, ‖d‖², ‖y‖² with y = m − a, d = b − a. One monomorphic loop per mode: the hot path of recover. */
function weightedSumSums(m: Float32Array, a: Float32Array, b: Float32Array): [number, number, number] {
  let dot = 0;
  let direction = 0;
  let change = 0;
  for (let i = 0; i < m.length; i++) {
    const base = a[i]!;
    const y = m[i]! - base;
    const d = b[i]! - base;
    dot += y * d;
    direction += d * d;
    change += y * y;
  }
  return [dot, direction, change];
}

/** The same with d = b − c (add difference). */
function addDifferenceSums(
  m: Float32Array,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
): [number, number, number] {
  let dot = 0;
  let direction = 0;
  let change = 0;
  for (let i = 0; i < m.length; i++) {
    const y = m[i]! - a[i]!;
    const d = b[i]! - c[i]!;
    dot += y * d;
    direction += d * d;
    change += y * y;
  }
  return [dot, direction, change];
}
