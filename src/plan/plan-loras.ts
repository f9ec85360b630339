import type { LoraBaseId } from "../arch/lora/lora-key-map.js";
import { type LoraTarget, loraTargets } from "../arch/lora/lora-targets.js";
import { GyozaError, isGyozaError } from "../errors.js";
import type { Checkpoint } from "../io/tensor.js";
import {
  checkLoraWeightsFit,
  type Family,
  type LoraBlockWeights,
  loraBlockWeightOf,
  loraSlotOfKey,
} from "../merge/index.js";
import { readOf } from "./finish-plan.js";
import type { LoraTermPlan, PlanLora, PlanWarning, ReadOp } from "./merge-plan.js";

/** One LoRA of a step, as the recipe gives it. */
export interface StepLora {
  /** The recipe input whose file is the LoRA (open). */
  readonly source: string;
  readonly checkpoint: Checkpoint;
  readonly ratio: number;
  readonly weights: LoraBlockWeights;
  /** Where the recipe says it (`steps.tuned.loras[0]`), for messages. */
  readonly path: string;
}

/** What an add_lora step adds: the terms of every key it changes, and what the plan shows of it. */
export interface PlannedLoras {
  /** Checkpoint key → its terms, LoRA by LoRA in recipe order. */
  readonly terms: ReadonlyMap<string, readonly LoraTermPlan[]>;
  readonly loras: readonly PlanLora[];
  readonly warnings: readonly PlanWarning[];
}

/**
 * Maps each LoRA of an add_lora step onto the model's keys from headers (and alpha scalars) only,
 * refusing before anything is written: a LoRA for another base model, one whose modules do not fit
 * the model's tensors or name keys it lacks, ranks that disagree, block weights written for another
 * model's blocks, and LoCon Tucker cores (not computed yet). A missing alpha is a warning: kohya
 * takes the rank, so the module's scale is 1. Terms whose ratio × block weight is 0 are left out
 * (their keys are copied, not read).
 */
export async function planLoras(
  step: string,
  loras: readonly StepLora[],
  model: ReadonlyMap<string, { readonly shape: readonly number[] }>,
  family: Family,
): Promise<PlannedLoras> {
  // the block-weight families are the bases LoRAs are trained for (SD 1.x, SD 2.x, SDXL)
  const base: LoraBaseId = family;
  const terms = new Map<string, LoraTermPlan[]>();
  const summaries: PlanLora[] = [];
  const warnings: PlanWarning[] = [];
  for (const lora of loras) {
    checkLoraWeightsFit(lora.weights, family, { where: `${lora.path}.weights`, code: "recipe" });
    const targets = await withPath(lora.path, () => loraTargets(lora.checkpoint, { base, model }));
    const tucker = targets.find((target) => target.mid);
    if (tucker) {
      throw new GyozaError(
        "format",
        `${tucker.module} is a LoCon module with a Tucker core (lora_mid): baking it is not supported yet`,
        {
          file: lora.checkpoint.path,
          path: lora.path,
          fix: "re-export the LoRA without use_tucker, or bake it with its trainer's tools",
        },
      );
    }
    const slots = new Map<string | null, { weight: number; modules: number }>();
    for (const target of targets) {
      const slot = loraSlotOfKey(target.targetKey);
      const blockWeight = loraBlockWeightOf(lora.weights, slot);
      const weight = lora.ratio * blockWeight;
      const entry = slots.get(slot) ?? { weight, modules: 0 };
      entry.modules++;
      slots.set(slot, entry);
      if (weight === 0) continue;
      const list = terms.get(target.targetKey) ?? [];
      list.push(termOf(lora.source, target, model.get(target.targetKey)!.shape, lora.ratio, blockWeight));
      terms.set(target.targetKey, list);
    }
    const missing = targets.filter((target) => target.alphaMissing).length;
    if (missing > 0) {
      warnings.push({
        code: "lora-alpha-missing",
        message: `LoRA "${lora.source}" (${step}): ${missing} of ${targets.length} modules have no alpha; taken as their rank (scale 1), as kohya does`,
      });
    }
    summaries.push({
      step,
      source: lora.source,
      base,
      ratio: lora.ratio,
      weights: lora.weights.text,
      modules: targets.length,
      ranks: [...new Set(targets.map((target) => target.rank))].sort((a, b) => a - b),
      alphaMissing: missing,
      slots: [...slots].map(([slot, entry]) => ({ slot, ...entry })),
    });
  }
  return { terms, loras: summaries, warnings };
}

function termOf(
  source: string,
  target: LoraTarget,
  shape: readonly number[],
  ratio: number,
  blockWeight: number,
): LoraTermPlan {
  const rows = target.rows
    ? { first: (target.rows.part * shape[0]!) / target.rows.of, count: shape[0]! / target.rows.of }
    : null;
  return {
    source,
    module: target.module,
    up: readOf(source, target.up) as ReadOp,
    down: readOf(source, target.down) as ReadOp,
    rank: target.rank,
    rows,
    ratio,
    blockWeight,
    alpha: target.alpha,
    scale: target.scale,
    multiplier: ratio * blockWeight * target.scale,
  };
}

/** Runs `plan`, adding the recipe path to a GyozaError that has none (loraTargets names the file only). */
async function withPath<T>(path: string, plan: () => Promise<T>): Promise<T> {
  try {
    return await plan();
  } catch (error) {
    if (!isGyozaError(error) || error.path !== undefined) throw error;
    throw new GyozaError(error.code, error.message, {
      file: error.file,
      path,
      fix: error.fix,
      cause: error.cause,
    });
  }
}
