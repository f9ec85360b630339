import { elementCount } from "../../io/dtype.js";
import { decodeToFloat32 } from "../../io/float-convert.js";
import { readTensorBytes } from "../../io/read-tensor.js";
import type { Checkpoint, StoredTensor } from "../../io/tensor.js";
import { type AnalysedModule, detectLoraBase, type LoraBaseDetection } from "./lora-base.js";
import { type LoraNaming, parseLoraKeys } from "./lora-modules.js";
import { type LoraIssue, moduleShape } from "./lora-shapes.js";

/** A module with its alpha as read from the file. */
export interface ReadModule extends AnalysedModule {
  /** The alpha the weight change is scaled with (alpha / rank): the file's, or the rank when missing or 0. */
  alpha: number | null;
  /** Why the file's alpha was not used: none stored, or 0 (both mean "the rank" to kohya). */
  alphaTakenAsRank?: "missing" | "zero";
}

export interface LoraAnalysis {
  naming: LoraNaming;
  modules: ReadModule[];
  base: LoraBaseDetection;
  /** The training metadata: safetensors `__metadata__`, or a pickle's top-level ss_* values. */
  metadata: Record<string, unknown>;
  issues: LoraIssue[];
}

/** How many keys outside any module are named in an issue. */
const UNKNOWN_KEYS_SHOWN = 3;

/**
 * Everything a LoRA's headers say, plus its alpha scalars (the only tensor data read): modules with
 * rank and delta shape, the base model by evidence, and the problems found, each naming its module.
 * Undefined when no key is a LoRA/LyCORIS/PEFT module.
 */
export async function analyseLora(checkpoint: Checkpoint): Promise<LoraAnalysis | undefined> {
  const parsed = parseLoraKeys(checkpoint.tensors);
  if (!parsed.naming || parsed.modules.length === 0) return undefined;
  const issues: LoraIssue[] = [];
  const shaped = parsed.modules.map((module) => {
    const shape = moduleShape(module);
    issues.push(...shape.issues);
    return { ...module, ...shape };
  });
  const metadata = trainingMetadataOf(checkpoint);
  const stringMetadata = Object.fromEntries(
    Object.entries(metadata).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  );
  const detected = detectLoraBase(shaped, stringMetadata);
  issues.push(...detected.issues);
  const modules: ReadModule[] = [];
  for (const module of shaped) modules.push({ ...module, ...(await readAlpha(module, issues)) });
  if (parsed.unknownKeys.length > 0) {
    issues.push({
      severity: "warning",
      code: "unknown-keys",
      message: `${parsed.unknownKeys.length} keys belong to no LoRA module (e.g. ${parsed.unknownKeys.slice(0, UNKNOWN_KEYS_SHOWN).join(", ")})`,
    });
  }
  return { naming: parsed.naming, modules, base: detected.base, metadata, issues };
}

async function readAlpha(
  module: AnalysedModule,
  issues: LoraIssue[],
): Promise<Pick<ReadModule, "alpha" | "alphaTakenAsRank">> {
  const tensor = module.tensors.get("alpha");
  if (!tensor) return { alpha: module.rank, alphaTakenAsRank: "missing" };
  if (elementCount(tensor.shape) !== 1) return { alpha: null }; // reported by moduleShape
  const value = await readScalar(tensor);
  if (!Number.isFinite(value)) {
    issues.push({
      severity: "error",
      code: "alpha-invalid",
      module: module.name,
      message: `${module.name}: alpha is ${value}, not a finite number`,
    });
    return { alpha: null };
  }
  // kohya networks/lora.py: `if alpha is None or alpha == 0: alpha = lora_dim`.
  if (value === 0) return { alpha: module.rank, alphaTakenAsRank: "zero" };
  return { alpha: value };
}

/** One number from a one-element tensor of any float or integer dtype. */
export async function readScalar(tensor: StoredTensor): Promise<number> {
  const bytes = await readTensorBytes(tensor);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (tensor.dtype) {
    case "I64":
      return Number(view.getBigInt64(0, true));
    case "I32":
      return view.getInt32(0, true);
    case "I16":
      return view.getInt16(0, true);
    case "I8":
      return view.getInt8(0);
    case "U8":
    case "BOOL":
      return view.getUint8(0);
    default:
      return decodeToFloat32(bytes, tensor.dtype)[0]!;
  }
}

/**
 * The training record: safetensors `__metadata__` as is; for a pickled LoRA, its top-level ss_*
 * scalars as strings, and ss_tag_frequency ({folder: {tag: count}}) rebuilt from its leaf paths
 * `ss_tag_frequency.<folder>.<tag>` (a tag may itself hold dots).
 */
export function trainingMetadataOf(checkpoint: Checkpoint): Record<string, unknown> {
  const metadata: Record<string, unknown> = { ...checkpoint.metadata };
  const tagFrequency = new Map<string, Map<string, unknown>>();
  for (const [path, value] of checkpoint.scalars ?? []) {
    if (!path.startsWith("ss_") || value === null) continue;
    const [head, folder, ...tag] = path.split(".");
    if (folder === undefined) metadata[head!] = String(value);
    else if (head === "ss_tag_frequency" && tag.length > 0) {
      const tags = tagFrequency.get(folder) ?? new Map<string, unknown>();
      tags.set(tag.join("."), value);
      tagFrequency.set(folder, tags);
    }
  }
  if (tagFrequency.size > 0 && metadata.ss_tag_frequency === undefined) {
    metadata.ss_tag_frequency = Object.fromEntries(
      [...tagFrequency].map(([folder, tags]) => [folder, Object.fromEntries(tags)]),
    );
  }
  return metadata;
}
