import { dtypeBytes } from "../io/dtype.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { ProgressListener } from "../progress.js";
import { alignedBytes, alignedChunks, decode } from "./aligned-chunks.js";
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

/** Elements decoded per piece before summing: 4 models × 128 KiB of f32 stay in L2 cache. */
const DECODE_PIECE_ELEMENTS = 1 << 15;

function add(fit: KeyFit, sums: readonly [number, number, number]): void {
  fit.dot += sums[0];
  fit.direction += sums[1];
  fit.change += sums[2];
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
  if (!simd) {
    for await (const { keyIndex, values } of alignedChunks(keys, kernel, onProgress)) {
      const [m, a, b, c] = values as [Float32Array, Float32Array, Float32Array, Float32Array?];
      const sums = mode === "add_difference" && c ? addDifferenceSums(m, a, b, c) : weightedSumSums(m, a, b);
      add(fits[keyIndex]!, sums);
    }
  } else {
    // Decode cache-sized pieces right before summing them: the f32 values never leave the CPU cache.
    const scratch = simd.allocate(new Array<number>(4).fill(DECODE_PIECE_ELEMENTS));
    for await (const { keyIndex, bytes } of alignedChunks(keys, kernel, onProgress, { decode: false })) {
      const key = keys[keyIndex]!;
      const count = bytes[0]!.byteLength / dtypeBytes(key.tensors[0]!.dtype);
      const fit = fits[keyIndex]!;
      for (let at = 0; at < count; at += DECODE_PIECE_ELEMENTS) {
        const length = Math.min(DECODE_PIECE_ELEMENTS, count - at);
        const piece = bytes.map((chunk, i) => {
          const size = dtypeBytes(key.tensors[i]!.dtype);
          const out = scratch[i]!.subarray(0, length);
          return decode(chunk.subarray(at * size, (at + length) * size), key.tensors[i]!, kernel, out);
        });
        const [m, a, b, c] = piece as [Float32Array, Float32Array, Float32Array, Float32Array?];
        add(fit, simd.sums(m, a, b, mode === "add_difference" && c ? c : a));
      }
    }
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
