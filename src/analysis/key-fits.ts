import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { ProgressListener } from "../progress.js";
import { alignedBytes, alignedChunks } from "./aligned-chunks.js";
import type { AnalysisKey } from "./analysis-keys.js";

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
  for await (const { keyIndex, values } of alignedChunks(keys, kernel, onProgress)) {
    const fit = fits[keyIndex]!;
    const [m, a, b, c] = values as [Float32Array, Float32Array, Float32Array, Float32Array?];
    const from = mode === "add_difference" && c ? c : a;
    let dot = 0;
    let direction = 0;
    let change = 0;
    for (let i = 0; i < m.length; i++) {
      const y = m[i]! - a[i]!;
      const d = b[i]! - from[i]!;
      dot += y * d;
      direction += d * d;
      change += y * y;
    }
    fit.dot += dot;
    fit.direction += direction;
    fit.change += change;
  }
  onProgress({ type: "finish", task: "recover" });
  return fits;
}
