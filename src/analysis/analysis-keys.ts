import { componentOf } from "../arch/components.js";
import { detectArchitecture } from "../arch/detect.js";
import { GyozaError } from "../errors.js";
import { elementCount } from "../io/dtype.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import { slotOfKey } from "../merge/block-map.js";
import { type BlockRule, type Family, isFamily, type Slot } from "../merge/slots.js";
import { type AlignedKey, isAnalysableDType } from "./aligned-chunks.js";

/** Components never compared: training leftovers, not part of the model a person uses. */
const IGNORED_COMPONENTS: ReadonlySet<string> = new Set(["ema"]);

/** A key present in every model with the same number of float elements. */
export interface AnalysisKey extends AlignedKey {
  /** Block slot under the rule, or null when the tensor is never merged (position_ids, …). */
  readonly slot: Slot | null;
  /** Component from the architecture data: unet, text_encoder, vae, … */
  readonly component: string;
  readonly elements: number;
}

export interface AnalysisKeys {
  /** sd1 / sdxl, or null for files without block slots (a standalone VAE, …). */
  readonly family: Family | null;
  readonly architecture: string;
  readonly keys: readonly AnalysisKey[];
  /** Keys of the first model missing from another, with the file lacking them. */
  readonly missing: readonly { key: string; file: string }[];
  /** Keys of other models the first model lacks. */
  readonly extra: readonly { key: string; file: string }[];
  /** Keys not compared: not float tensors in every model (position_ids, …), or element counts differ. */
  readonly skipped: readonly string[];
}

/**
 * The keys the analysis can compare across `checkpoints` (the first one leads), with slot and
 * component. Different families fail here, before anything is read.
 */
export function analysisKeys(checkpoints: readonly Checkpoint[], rule: BlockRule = "classic"): AnalysisKeys {
  const [first, ...others] = checkpoints;
  if (!first) throw new GyozaError("usage", "nothing to analyse: no models given");
  const detection = detectArchitecture(first.tensors);
  for (const other of others) {
    const family = detectArchitecture(other.tensors).family;
    if (family !== detection.family) {
      throw new GyozaError(
        "architecture-mismatch",
        `${other.path} is ${family}, ${first.path} is ${detection.family}: they cannot be compared`,
        {
          file: other.path,
          fix: "compare models of the same architecture (SD 1.x with SD 1.x, SDXL with SDXL)",
        },
      );
    }
  }
  const family = isFamily(detection.family) ? detection.family : null;
  const components = detection.spec?.components ?? [];
  const keys: AnalysisKey[] = [];
  const missing: { key: string; file: string }[] = [];
  const skipped: string[] = [];
  for (const [key, tensor] of first.tensors) {
    const component = componentOf(key, components);
    if (IGNORED_COMPONENTS.has(component)) continue;
    const tensors: StoredTensor[] = [tensor];
    for (const other of others) {
      const match = other.tensors.get(key);
      if (match) tensors.push(match);
      else missing.push({ key, file: other.path });
    }
    if (tensors.length !== checkpoints.length) continue;
    const elements = elementCount(tensor.shape);
    const comparable = tensors.every((t) => isAnalysableDType(t.dtype) && elementCount(t.shape) === elements);
    if (!comparable) {
      skipped.push(key);
      continue;
    }
    const slot = family ? slotOfKey(key, family, rule) : null;
    keys.push({ key, tensors, slot, component, elements });
  }
  const extra: { key: string; file: string }[] = [];
  for (const other of others) {
    for (const key of other.tensors.keys()) {
      if (!first.tensors.has(key) && !IGNORED_COMPONENTS.has(componentOf(key, components)))
        extra.push({ key, file: other.path });
    }
  }
  return { family, architecture: detection.id, keys, missing, extra, skipped };
}

/** A tensor a model holds with another shape than the model it is compared with. */
export interface ShapeMismatch {
  readonly key: string;
  readonly shape: readonly number[];
  readonly expected: readonly number[];
}

/**
 * The `keys` that `model` holds with another shape than `target` does (keys either lacks are not
 * mismatches). A model that differs in any is no parent of the target: no weighted sum of it
 * could have produced the target's tensors, and comparing the rest would fit on scraps.
 */
export function shapeMismatches(
  target: Checkpoint,
  model: Checkpoint,
  keys: Iterable<string>,
): ShapeMismatch[] {
  const mismatches: ShapeMismatch[] = [];
  for (const key of keys) {
    const expected = target.tensors.get(key)?.shape;
    const shape = model.tensors.get(key)?.shape;
    if (!expected || !shape) continue;
    if (shape.length !== expected.length || shape.some((dim, axis) => dim !== expected[axis]))
      mismatches.push({ key, shape, expected });
  }
  return mismatches;
}

/** "812 of 830 compared tensors have other shapes than in the target (e.g. K is [20, 4] here, [320, 4] there)". */
export function describeShapeMismatches(mismatches: readonly ShapeMismatch[], compared: number): string {
  const first = mismatches[0];
  const example = first
    ? ` (e.g. ${first.key} is [${first.shape.join(", ")}] here, [${first.expected.join(", ")}] in the target)`
    : "";
  return `${mismatches.length} of ${compared} compared tensors have other shapes than in the target${example}`;
}
