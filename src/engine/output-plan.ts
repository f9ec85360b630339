import { realpath } from "node:fs/promises";
import { resolve } from "node:path";
import { type Detection, detectArchitecture } from "../arch/detect.js";
import { positionIdKeys } from "../arch/inspect-checkpoint.js";
import { getLayout } from "../arch/layouts.js";
import { checkVaeFits, VAE_PREFIX, vaeTensorsForBaking } from "../arch/vae.js";
import { GyozaError } from "../errors.js";
import { BufferByteSource } from "../io/byte-source.js";
import { type DType, isFloatDType } from "../io/dtype.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";

/** position_ids as every loader expects it: int64 arange(77), shape [1, 77]. */
export function freshPositionIds(key: string): StoredTensor {
  const ids = new BigInt64Array(77);
  for (let i = 0; i < 77; i++) ids[i] = BigInt(i);
  const source = new BufferByteSource(new Uint8Array(ids.buffer), "<arange(77)>");
  return { key, dtype: "I64", shape: [1, 77], source, byteOffset: 0, strides: null, byteLength: 77 * 8 };
}

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

/** Keys `--prune` keeps: the architecture's layout (any component but EMA); without a layout, all but EMA/loss. */
export function prunedKeep(key: string, detection: Detection): boolean {
  if (key.startsWith("model_ema.") || key.startsWith("loss.")) return false;
  const layoutId = detection.spec?.layout;
  if (!layoutId) return true;
  return getLayout(layoutId).byKey.has(key);
}

/**
 * The finishing steps shared by convert and merge: prune, bake a VAE, fix CLIP position_ids and
 * choose each tensor's output dtype. Works on descriptions only; nothing is read.
 */
export function planFinishedTensors(
  tensors: ReadonlyMap<string, StoredTensor>,
  options: FinishOptions,
  detection: Detection = detectArchitecture(tensors),
): { planned: PlannedOutputTensor[]; report: FinishReport } {
  const report: FinishReport = { dropped: [], bakedVaeKeys: 0, fixedPositionIds: [] };
  const result = new Map<string, StoredTensor>();
  for (const [key, tensor] of tensors) {
    if (options.prune && !prunedKeep(key, detection)) report.dropped.push(key);
    else result.set(key, tensor);
  }
  // A baked VAE takes the precision of the VAE it replaces (fp32 kl-f8-anime2 in an fp16 model → fp16).
  const dtypeOverride = new Map<string, DType>();
  if (options.bakeVae) {
    const vae = vaeTensorsForBaking(options.bakeVae);
    checkVaeFits(result, vae, options.bakeVae.path);
    const modelVaeDtype = [...result.values()].find(
      (t) => t.key.startsWith(VAE_PREFIX) && isFloatDType(t.dtype),
    )?.dtype;
    for (const key of [...result.keys()]) if (key.startsWith(VAE_PREFIX)) result.delete(key);
    for (const [key, tensor] of vae) {
      result.set(key, tensor);
      if (modelVaeDtype && isFloatDType(tensor.dtype)) dtypeOverride.set(key, modelVaeDtype);
    }
    report.bakedVaeKeys = vae.size;
  }
  if (options.fixClip) {
    for (const key of positionIdKeys(result.keys())) {
      result.set(key, freshPositionIds(key));
      report.fixedPositionIds.push(key);
    }
  }
  const planned = [...result.entries()].map(([key, source]) => {
    const dtype = !isFloatDType(source.dtype)
      ? source.dtype
      : (options.dtype ?? dtypeOverride.get(key) ?? source.dtype);
    return { key, source, dtype };
  });
  return { planned, report };
}

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
