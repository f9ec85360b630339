import type { Checkpoint } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { type BlockRule, slotsOf } from "../merge/slots.js";
import type { ProgressListener } from "../progress.js";
import { alignedBytes, alignedChunks } from "./aligned-chunks.js";
import { type AnalysisKey, type AnalysisKeys, analysisKeys } from "./analysis-keys.js";

/** How alike two models are over a set of tensors. */
export interface DiffStats {
  readonly name: string;
  readonly keys: number;
  readonly elements: number;
  /** ⟨A, B⟩ / (‖A‖ ‖B‖); 1 when both are all zeros. */
  readonly cosine: number;
  /** ‖A − B‖ / ‖A‖ (‖A − B‖ / ‖B‖ when A is all zeros). */
  readonly relativeL2: number;
  /** Share of tensors whose values are all equal (after decoding to f32, so fp16 vs fp32 of one model can match). */
  readonly identical: number;
}

export interface ModelDiff {
  readonly family: string | null;
  readonly architecture: string;
  /** BASE, IN00 … OUT11 (or SDXL's), empty for files without blocks. */
  readonly blocks: readonly DiffStats[];
  /** unet, text_encoder(_2), vae, other. */
  readonly components: readonly DiffStats[];
  readonly total: DiffStats;
  /** Per key, when asked for. */
  readonly keys?: readonly (DiffStats & { slot: string | null; component: string })[];
  readonly missing: AnalysisKeys["missing"];
  readonly extra: AnalysisKeys["extra"];
  readonly skipped: AnalysisKeys["skipped"];
}

/** Components in the order a person reads them; others follow. */
const COMPONENT_ORDER = ["unet", "text_encoder", "text_encoder_2", "vae"];
const componentRank = (name: string): number =>
  COMPONENT_ORDER.includes(name) ? COMPONENT_ORDER.indexOf(name) : COMPONENT_ORDER.length;

interface Sums {
  dot: number;
  normA: number;
  normB: number;
  distance: number;
  identical: boolean;
}

export interface DiffOptions {
  kernel: MergeKernel;
  rule?: BlockRule;
  perKey?: boolean;
  onProgress?: ProgressListener;
}

/** Compares two models block by block and component by component in one streaming pass (float64 sums). */
export async function diffModels(a: Checkpoint, b: Checkpoint, options: DiffOptions): Promise<ModelDiff> {
  const plan = analysisKeys([a, b], options.rule ?? "classic");
  const sums: Sums[] = plan.keys.map(() => ({ dot: 0, normA: 0, normB: 0, distance: 0, identical: true }));
  const onProgress = options.onProgress ?? (() => {});
  onProgress({ type: "start", task: "diff", totalBytes: alignedBytes(plan.keys) });
  for await (const { keyIndex, values } of alignedChunks(plan.keys, options.kernel, onProgress)) {
    const [x, y] = values as [Float32Array, Float32Array];
    const sum = sums[keyIndex]!;
    let dot = 0;
    let normA = 0;
    let normB = 0;
    let distance = 0;
    let identical = sum.identical;
    for (let i = 0; i < x.length; i++) {
      const p = x[i]!;
      const q = y[i]!;
      const d = p - q;
      dot += p * q;
      normA += p * p;
      normB += q * q;
      distance += d * d;
      // NaN never equals itself: a tensor with NaN at the same place in both still counts as different.
      if (p !== q) identical = false;
    }
    sum.dot += dot;
    sum.normA += normA;
    sum.normB += normB;
    sum.distance += distance;
    sum.identical = identical;
  }
  onProgress({ type: "finish", task: "diff" });
  const group = (name: string, pick: (key: AnalysisKey) => boolean) => {
    const chosen = plan.keys.flatMap((key, i) => (pick(key) ? [i] : []));
    return stats(
      name,
      chosen.map((i) => plan.keys[i]!),
      chosen.map((i) => sums[i]!),
    );
  };
  const blockNames = plan.family ? slotsOf(plan.family).filter((slot) => slot !== "VAE") : [];
  const componentNames = [...new Set(plan.keys.map((key) => key.component))].sort(
    (x, y) => componentRank(x) - componentRank(y),
  );
  return {
    family: plan.family,
    architecture: plan.architecture,
    blocks: blockNames.map((slot) => group(slot, (key) => key.slot === slot)),
    components: componentNames.map((name) => group(name, (key) => key.component === name)),
    total: stats("total", plan.keys, sums),
    ...(options.perKey
      ? {
          keys: plan.keys.map((key, i) => ({
            ...stats(key.key, [key], [sums[i]!]),
            slot: key.slot,
            component: key.component,
          })),
        }
      : {}),
    missing: plan.missing,
    extra: plan.extra,
    skipped: plan.skipped,
  };
}

function stats(name: string, keys: readonly AnalysisKey[], sums: readonly Sums[]): DiffStats {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  let distance = 0;
  let identical = 0;
  for (const sum of sums) {
    dot += sum.dot;
    normA += sum.normA;
    normB += sum.normB;
    distance += sum.distance;
    if (sum.identical) identical++;
  }
  const scale = normA > 0 ? normA : normB;
  return {
    name,
    keys: keys.length,
    elements: keys.reduce((total, key) => total + key.elements, 0),
    cosine: normA > 0 && normB > 0 ? dot / Math.sqrt(normA * normB) : normA === normB ? 1 : 0,
    relativeL2: scale > 0 ? Math.sqrt(distance / scale) : 0,
    identical: keys.length > 0 ? identical / keys.length : 1,
  };
}
