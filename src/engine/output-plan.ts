import { realpath } from "node:fs/promises";
import { resolve } from "node:path";
import { type Detection, detectArchitecture } from "../arch/detect.js";
import { freshPositionIds } from "../arch/position-ids.js";
import { vaeTensorsForBaking } from "../arch/vae.js";
import { GyozaError } from "../errors.js";
import type { DType } from "../io/dtype.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import { BAKED_VAE_SOURCE, finishPlan, type UnfinishedKey } from "../plan/finish-plan.js";

export { freshPositionIds } from "../arch/position-ids.js";
export { prunedKeep } from "../plan/finish-plan.js";

export interface FinishOptions {
  /** Target float dtype; non-float tensors (position_ids, counters) are never converted. */
  dtype?: DType;
  /** Drop EMA, optimizer and training leftovers; keep only the architecture's tensors. */
  prune?: boolean;
  /** Tensors of a VAE file to bake in, from `vaeTensorsForBaking`. */
  bakeVae?: Checkpoint;
  /** Reset position_ids to int64 arange(77). */
  fixClip?: boolean;
}

export interface PlannedOutputTensor {
  key: string;
  source: StoredTensor;
  /** The dtype written (source dtype converted when different). */
  dtype: DType;
}

export interface FinishReport {
  dropped: string[];
  bakedVaeKeys: number;
  fixedPositionIds: string[];
}

/**
 * The finishing steps of a conversion (prune, bake a VAE, fix CLIP position_ids, each tensor's
 * output dtype), decided by the one implementation merges use too (`finishPlan`). Works on
 * descriptions only; nothing is read.
 */
export function planFinishedTensors(
  tensors: ReadonlyMap<string, StoredTensor>,
  options: FinishOptions,
  detection: Detection = detectArchitecture(tensors),
): { planned: PlannedOutputTensor[]; report: FinishReport } {
  const unfinished: UnfinishedKey[] = [...tensors].map(([key, tensor]) => ({
    key,
    primary: tensor,
    op: { op: "read", source: CONVERTED_SOURCE, key, dtype: tensor.dtype },
  }));
  const baked = options.bakeVae ? vaeTensorsForBaking(options.bakeVae) : undefined;
  const { keys, finishing } = finishPlan(
    unfinished,
    {
      ...(options.dtype ? { dtype: options.dtype } : {}),
      prune: options.prune ?? false,
      resetPositionIds: options.fixClip ?? false,
      vae: baked ? { policy: "bake", file: options.bakeVae!.path, tensors: baked } : { policy: "as-planned" },
    },
    detection,
  );
  const planned = keys.map(({ key, op, dtype }) => {
    const source =
      op.op === "arange"
        ? freshPositionIds(key)
        : op.op === "read" && op.source === BAKED_VAE_SOURCE
          ? baked!.get(key)!
          : tensors.get(key)!;
    return { key, source, dtype };
  });
  return {
    planned,
    report: {
      dropped: [...finishing.pruned],
      bakedVaeKeys: finishing.vae.policy === "bake" ? finishing.vae.keys : 0,
      fixedPositionIds: [...finishing.positionIdsReset],
    },
  };
}

/** The plan's name for the checkpoint a conversion reads. */
const CONVERTED_SOURCE = "model";

/** The path with links resolved (or just made absolute when it does not exist yet). */
async function canonicalPath(path: string): Promise<string> {
  return realpath(path).catch(() => resolve(path));
}

/** Refuses an output path that is (a link to) one of the inputs, named → path. */
export async function assertNotOverwritingInput(
  output: string,
  inputs: Readonly<Record<string, string>>,
): Promise<void> {
  const target = await canonicalPath(output);
  for (const [name, path] of Object.entries(inputs)) {
    if ((await canonicalPath(path)) === target) {
      throw new GyozaError("usage", `the output path is input "${name}"`, {
        file: output,
        fix: "write to a new file: gyoza never modifies its inputs",
      });
    }
  }
}
