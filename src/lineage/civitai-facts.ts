import { type InspectReport, inspectCheckpoint } from "../arch/inspect-checkpoint.js";
import { isGyozaError } from "../errors.js";
import { type DType, elementCount, isDType, isFloatDType } from "../io/dtype.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { isFamily } from "../merge/index.js";

/**
 * What Civitai shows for a model file (DOMAIN.md §9: files[].metadata {format, size, fp} and the
 * file's type), derived from the file itself so an author can check a listing before uploading.
 */
export interface CivitaiFileFacts {
  /** SafeTensor for safetensors, PickleTensor for every PyTorch pickle (.ckpt/.pt/.pth/.bin). */
  format: "SafeTensor" | "PickleTensor";
  /** pruned: no EMA weights and no keys outside the architecture's layout; full otherwise. */
  size: "full" | "pruned";
  /** The dominant float dtype (by parameters) of the UNet, or of every tensor for VAEs, embeddings and LoRAs. */
  fp: "fp16" | "fp32" | "bf16" | "fp8" | null;
  /** Model for checkpoints; VAE, TextualInversion or LORA by architecture; null when not recognised. */
  type: "Model" | "VAE" | "TextualInversion" | "LORA" | null;
}

const FP_NAMES: Partial<Record<DType, CivitaiFileFacts["fp"]>> = {
  F32: "fp32",
  F16: "fp16",
  BF16: "bf16",
  F8_E4M3: "fp8",
  F8_E5M2: "fp8",
};

const TYPE_BY_FAMILY: Record<string, CivitaiFileFacts["type"]> = {
  sd1: "Model",
  sdxl: "Model",
  vae: "VAE",
  embedding: "TextualInversion",
  lora: "LORA",
};

/** Where a full checkpoint's UNet lives: its precision is the one Civitai's fp names. */
const UNET_PREFIX = "model.diffusion_model.";

export function civitaiFacts(report: InspectReport): CivitaiFileFacts {
  const family = report.architecture.family;
  const isCheckpoint = isFamily(family);
  const parametersByDtype = new Map<DType, number>();
  for (const [key, tensor] of Object.entries(report.tensors)) {
    if (isCheckpoint && !key.startsWith(UNET_PREFIX)) continue;
    if (!isDType(tensor.dtype) || !isFloatDType(tensor.dtype)) continue;
    parametersByDtype.set(
      tensor.dtype,
      (parametersByDtype.get(tensor.dtype) ?? 0) + elementCount(tensor.shape),
    );
  }
  let dominant: DType | undefined;
  for (const [dtype, count] of parametersByDtype) {
    if (dominant === undefined || count > parametersByDtype.get(dominant)!) dominant = dtype;
  }
  const unpruned = report.warnings.some(
    (warning) => warning.code === "ema-present" || warning.code === "junk-keys",
  );
  return {
    format: report.format === "safetensors" ? "SafeTensor" : "PickleTensor",
    size: unpruned ? "full" : "pruned",
    fp: dominant === undefined ? null : (FP_NAMES[dominant] ?? null),
    type: TYPE_BY_FAMILY[family] ?? null,
  };
}

/** Opens a checkpoint (headers only, plus the few bytes inspection checks) and derives its Civitai facts. */
export async function readCivitaiFacts(path: string): Promise<CivitaiFileFacts> {
  const checkpoint = await openCheckpoint(path);
  try {
    return civitaiFacts(await inspectCheckpoint(checkpoint));
  } finally {
    await checkpoint.close();
  }
}

/** One line for people: "SafeTensor · pruned · fp16 · Model". */
export function formatCivitaiFacts(facts: CivitaiFileFacts): string {
  return [facts.format, facts.size, facts.fp ?? "fp unknown", facts.type ?? "type unknown"].join(" · ");
}

/**
 * `{civitai}` for a file that opens as a checkpoint, `{}` for any other file (hashing accepts every
 * file; only checkpoints have Civitai facts). Unsafe or broken checkpoints also give `{}`.
 */
export async function civitaiFactsIfCheckpoint(path: string): Promise<{ civitai?: CivitaiFileFacts }> {
  try {
    return { civitai: await readCivitaiFacts(path) };
  } catch (error) {
    if (isGyozaError(error)) return {};
    throw error;
  }
}
