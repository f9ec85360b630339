import type { Detection } from "../arch/detect.js";
import { positionIdKeys } from "../arch/inspect-checkpoint.js";
import { getLayout } from "../arch/layouts.js";
import { checkVaeFits, VAE_PREFIX } from "../arch/vae.js";
import { type DType, isFloatDType } from "../io/dtype.js";
import type { StoredTensor } from "../io/tensor.js";
import { firstRead, type PlanFinishing, type PlanKey, type PlanOp } from "./merge-plan.js";

/** Source name of a VAE file baked into the output. */
export const BAKED_VAE_SOURCE = "@vae";

/** What happens to the VAE tensors (`first_stage_model.*`) of the output. */
export type VaeFinish =
  /** Leave them as planned (convert; a merge whose VAE policy is "merge"). */
  | { readonly policy: "as-planned" }
  /** Take each from the first source that has it (merge "keep-a": merging the VAE greys images). */
  | { readonly policy: "keep-first" }
  /** Take each from this source (merge "take-b"). */
  | { readonly policy: "take"; readonly source: string }
  /** Replace them by a VAE file's, mapped under `first_stage_model.` (`vaeTensorsForBaking`). */
  | { readonly policy: "bake"; readonly file: string; readonly tensors: ReadonlyMap<string, StoredTensor> };

export interface FinishChoices {
  /** Target float dtype; integer tensors (position_ids, counters) keep theirs. */
  readonly dtype?: DType;
  /** Drop EMA, optimizer and training leftovers: keep only the architecture's tensors. */
  readonly prune: boolean;
  /** Write CLIP position_ids as int64 arange(77) (a merge always does: they are never interpolated). */
  readonly resetPositionIds: boolean;
  readonly vae: VaeFinish;
}

/** A key before finishing: its op, and the stored tensor whose shape and dtype describe it. */
export interface UnfinishedKey {
  readonly key: string;
  readonly op: PlanOp;
  readonly primary: StoredTensor;
}

/** Keys pruning keeps: the architecture's layout (any component but EMA); without a layout, all but EMA/loss. */
export function prunedKeep(key: string, detection: Detection): boolean {
  if (key.startsWith("model_ema.") || key.startsWith("loss.")) return false;
  const layoutId = detection.spec?.layout;
  if (!layoutId) return true;
  return getLayout(layoutId).byKey.has(key);
}

/**
 * The finishing decisions convert and merge share, made once on descriptions (nothing is read):
 * prune, the VAE (keep, take, bake), position_ids and each key's output dtype. A baked VAE takes
 * the precision of the VAE it replaces (fp32 kl-f8-anime2 in an fp16 model → fp16) unless a target
 * dtype is asked for.
 */
export function finishPlan(
  keys: readonly UnfinishedKey[],
  choices: FinishChoices,
  detection: Detection,
): { keys: PlanKey[]; finishing: PlanFinishing } {
  const pruned: string[] = [];
  let kept = keys.filter((planned) => {
    const keep = !choices.prune || prunedKeep(planned.key, detection);
    if (!keep) pruned.push(planned.key);
    return keep;
  });
  const vae = choices.vae;
  let vaeFinishing: PlanFinishing["vae"] = { policy: "none", from: null, keys: 0 };
  const vaeKeys = kept.filter((planned) => planned.key.startsWith(VAE_PREFIX));
  if (vae.policy === "bake") {
    checkVaeFits(new Map(kept.map((k) => [k.key, k.primary])), vae.tensors, vae.file);
    const modelVae = vaeKeys.find((k) => isFloatDType(k.primary.dtype))?.primary;
    kept = kept.filter((planned) => !planned.key.startsWith(VAE_PREFIX));
    for (const [key, tensor] of vae.tensors) {
      const primary = modelVae && isFloatDType(tensor.dtype) ? { ...tensor, dtype: modelVae.dtype } : tensor;
      kept.push({ key, primary, op: readOf(BAKED_VAE_SOURCE, tensor) });
    }
    vaeFinishing = { policy: "bake", from: vae.file, keys: vae.tensors.size };
  } else if (vae.policy === "keep-first" || vae.policy === "take") {
    let from: string | null = null;
    kept = kept.map((planned) => {
      if (!planned.key.startsWith(VAE_PREFIX) || planned.op.op === "read") return planned;
      const read =
        vae.policy === "take"
          ? readFrom(planned.op, vae.source)
          : (firstRead(planned.op) as PlanOp | undefined);
      if (!read) return planned;
      from ??= (read as { source: string }).source;
      return { ...planned, op: read };
    });
    if (vaeKeys.length > 0)
      vaeFinishing = {
        policy: "keep",
        from: from ?? (vae.policy === "take" ? vae.source : firstSource(vaeKeys)),
        keys: vaeKeys.length,
      };
  } else if (vaeKeys.length > 0) {
    const merged = vaeKeys.some((planned) => planned.op.op !== "read");
    vaeFinishing = {
      policy: merged ? "merge" : "keep",
      from: merged ? null : firstSource(vaeKeys),
      keys: vaeKeys.length,
    };
  }
  const positionIdsReset: string[] = [];
  const reset = new Set(choices.resetPositionIds ? positionIdKeys(kept.map((k) => k.key)) : []);
  const finished = kept.map((planned): PlanKey => {
    if (reset.has(planned.key)) {
      positionIdsReset.push(planned.key);
      return { key: planned.key, shape: [1, 77], dtype: "I64", op: { op: "arange", length: 77 } };
    }
    const dtype = planned.primary.dtype;
    return {
      key: planned.key,
      shape: planned.primary.shape,
      dtype: choices.dtype && isFloatDType(dtype) ? choices.dtype : dtype,
      op: planned.op,
    };
  });
  return { keys: finished, finishing: { pruned, positionIdsReset, vae: vaeFinishing } };
}

export function readOf(source: string, tensor: StoredTensor): PlanOp {
  return { op: "read", source, key: tensor.key, dtype: tensor.dtype };
}

function readFrom(op: PlanOp, source: string): PlanOp | undefined {
  if (op.op === "read") return op.source === source ? op : undefined;
  if (!("args" in op)) return undefined;
  for (const arg of op.args) {
    const found = readFrom(arg, source);
    if (found) return found;
  }
  return undefined;
}

function firstSource(keys: readonly UnfinishedKey[]): string | null {
  const read = firstRead(keys[0]!.op);
  return read ? read.source : null;
}
