import { GyozaError } from "../errors.js";
import type { Checkpoint } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { type BlockRule, type Family, type Slot, slotsOf } from "../merge/slots.js";
import type { ProgressListener } from "../progress.js";
import {
  type AnalysisKeys,
  analysisKeys,
  describeShapeMismatches,
  shapeMismatches,
} from "./analysis-keys.js";
import { type KeyFit, type MergeMode, measureKeyFits } from "./key-fits.js";
import { type NearestPreset, nearestPreset } from "./nearest-preset.js";
import { type DetectedOverride, residualOf, type SlotSolution, solveSlot } from "./solve-slot.js";

/** Above this overall residual, a weighted sum of the parents does not explain the model. */
export const UNEXPLAINED_RESIDUAL = 0.1;
/** VAE weights this close to 0 or 1 mean the VAE was kept from A or taken from B. */
const VAE_POLICY_TOLERANCE = 0.01;
/** The group VAE keys are solved in: a VAE is handled by policy, not by the BASE weight. */
export const VAE_GROUP = "VAE";

export interface SlotRecovery extends SlotSolution {
  readonly slot: Slot;
}

export interface Recovery {
  readonly mode: MergeMode;
  readonly family: Family;
  readonly rule: BlockRule;
  /** BASE, IN00 … OUT11 (SDXL: … OUT08), in slot order. */
  readonly slots: readonly SlotRecovery[];
  /** Slot name → α (null where the parents are identical and any α fits). */
  readonly alpha: Readonly<Record<Slot, number | null>>;
  /** The VAE (first_stage_model.*): its own α and the policy it implies. */
  readonly vae: (SlotSolution & { policy: "keep-a" | "take-b" | "merge" }) | null;
  /** Elemental overrides found inside blocks, in the recipe's form plus the keys they cover. */
  readonly overrides: readonly (DetectedOverride & { block: Slot })[];
  /** Over all slots: √(unexplained / ‖d‖²). */
  readonly residual: number;
  /** Slots given an α (the parents differ there); the others fit any α, so they say nothing. */
  readonly solvedSlots: number;
  /** False when the residual says this model is not a merge of these parents in this mode, or no slot was solved. */
  readonly explained: boolean;
  readonly nearestPreset: NearestPreset | null;
  readonly keys: Pick<AnalysisKeys, "missing" | "extra" | "skipped">;
}

export interface RecoverOptions {
  kernel: MergeKernel;
  /** weighted_sum needs parents [A, B]; add_difference [A, B, C]. Default: by the number of parents. */
  mode?: MergeMode;
  rule?: BlockRule;
  /** Look for keys inside a block that follow their own weight (default true). */
  elemental?: boolean;
  onProgress?: ProgressListener;
}

/**
 * Estimates the block weights that made `merged` from its parents in one streaming pass: per key
 * the float64 sums ⟨M−A, d⟩, ‖d‖², ‖M−A‖², then per block the least-squares α
 * ⟨M−A, d⟩ / ‖d‖² with d = B − A (weighted sum) or B − C (add difference).
 */
export async function recoverWeights(
  merged: Checkpoint,
  parents: readonly Checkpoint[],
  options: RecoverOptions,
): Promise<Recovery> {
  const mode = options.mode ?? (parents.length === 3 ? "add_difference" : "weighted_sum");
  const needed = mode === "add_difference" ? 3 : 2;
  if (parents.length !== needed) {
    throw new GyozaError("usage", `${mode} recovery needs ${needed} parents, got ${parents.length}`, {
      fix: mode === "add_difference" ? "give --from A B C" : "give --from A B",
    });
  }
  const rule = options.rule ?? "classic";
  const plan = analysisKeys([merged, ...parents], rule);
  if (!plan.family) {
    throw new GyozaError(
      "architecture-mismatch",
      `${merged.path} is ${plan.architecture}: it has no blocks to recover`,
      {
        file: merged.path,
        fix: "recover works on SD 1.x/2.x and SDXL checkpoints",
      },
    );
  }
  refuseOtherShapes(merged, parents, analysisKeys([merged], rule).keys);
  const keys = plan.keys.filter((key) => key.slot !== null);
  const fits = await measureKeyFits(keys, mode, options.kernel, options.onProgress);
  return solveRecovery(fits, plan.family, mode, rule, options.elemental ?? true, plan);
}

/** Turns per-key fits into per-slot weights, overrides, the VAE policy and the nearest preset. */
export function solveRecovery(
  fits: readonly KeyFit[],
  family: Family,
  mode: MergeMode,
  rule: BlockRule,
  elemental: boolean,
  plan: Pick<AnalysisKeys, "missing" | "extra" | "skipped">,
): Recovery {
  const groups = new Map<string, KeyFit[]>();
  for (const fit of fits) {
    const group = fit.key.component === "vae" ? VAE_GROUP : fit.key.slot!;
    groups.set(group, [...(groups.get(group) ?? []), fit]);
  }
  const slotNames = slotsOf(family).filter((slot) => slot !== VAE_GROUP);
  const slots = slotNames.map((slot) => ({ slot, ...solveSlot(groups.get(slot) ?? [], elemental) }));
  const vaeFits = groups.get(VAE_GROUP);
  const vaeSolution = vaeFits ? solveSlot(vaeFits, false) : null;
  const vae = vaeSolution ? { ...vaeSolution, policy: vaePolicy(vaeSolution.alpha) } : null;
  let error = 0;
  let direction = 0;
  for (const solved of slots) {
    const weight = (groups.get(solved.slot) ?? []).reduce((sum, fit) => sum + fit.direction, 0);
    error += solved.residual ** 2 * weight;
    direction += weight;
  }
  const residual = residualOf(error, direction);
  const alpha = Object.fromEntries(slots.map((s) => [s.slot, s.alpha]));
  const solvedSlots = slots.filter((s) => s.alpha !== null).length;
  return {
    mode,
    family,
    rule,
    slots,
    alpha,
    vae,
    overrides: slots.flatMap((s) => s.overrides.map((o) => ({ block: s.slot, ...o }))),
    residual,
    solvedSlots,
    explained: solvedSlots > 0 && residual <= UNEXPLAINED_RESIDUAL,
    nearestPreset: mode === "weighted_sum" ? nearestPreset(slots, family) : null,
    keys: plan,
  };
}

/** A parent holding a merged tensor with another shape cannot have made it (analysisKeys would quietly leave the key out). */
function refuseOtherShapes(
  merged: Checkpoint,
  parents: readonly Checkpoint[],
  keys: readonly { key: string; slot: Slot | null }[],
): void {
  const merging = keys.filter((key) => key.slot !== null).map((key) => key.key);
  for (const parent of parents) {
    const mismatches = shapeMismatches(merged, parent, merging);
    if (mismatches.length === 0) continue;
    throw new GyozaError(
      "architecture-mismatch",
      `cannot be a parent of ${merged.path}: ${describeShapeMismatches(mismatches, merging.length)}`,
      { file: parent.path, fix: "give the models the merge was made from (same architecture and size)" },
    );
  }
}

function vaePolicy(alpha: number | null): "keep-a" | "take-b" | "merge" {
  if (alpha === null || Math.abs(alpha) <= VAE_POLICY_TOLERANCE) return "keep-a";
  if (Math.abs(alpha - 1) <= VAE_POLICY_TOLERANCE) return "take-b";
  return "merge";
}
