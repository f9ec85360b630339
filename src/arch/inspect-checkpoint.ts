import { elementCount, isFloatDType } from "../io/dtype.js";
import { readTensorBytes } from "../io/read-tensor.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import { type DecodedMetadata, decodeMetadata } from "../metadata/decode-metadata.js";
import { type ComponentSummary, componentOf, summarizeComponents } from "./components.js";
import { type Detection, detectArchitecture } from "./detect.js";
import { type EmbeddingReport, inspectEmbedding } from "./embedding.js";
import { getLayout } from "./layouts.js";
import { inspectLora, type LoraReport } from "./lora/inspect-lora.js";
import { refinePrediction } from "./prediction.js";

export interface InspectWarning {
  code:
    | "ema-present"
    | "position-ids-dtype"
    | "position-ids-values"
    | "junk-keys"
    | "mixed-dtypes"
    | "missing-keys"
    | "pickle";
  message: string;
}

/**
 * What `gyoza inspect --json` prints. Schema "gyoza.inspect/1": fields are only ever added.
 * `tensors` maps each state-dict key (as a loader sees it) to its safetensors dtype name and shape.
 */
export interface InspectReport {
  schema: "gyoza.inspect/1";
  file: string;
  size: number;
  format: Checkpoint["format"];
  architecture: Omit<Detection, "spec">;
  components: ComponentSummary[];
  parameters: number;
  dtypes: Record<string, number>;
  tensors: Record<string, { dtype: string; shape: number[] }>;
  metadata: Record<string, string>;
  decodedMetadata: DecodedMetadata;
  warnings: InspectWarning[];
  pickle?: { globals: string[]; extras: string[] };
  /** For LoRA / LyCORIS / PEFT files: format, base model, rank, alpha, targets, training metadata. */
  lora?: LoraReport;
  /** For textual-inversion embeddings: token, vectors, text encoders, training record. */
  embedding?: EmbeddingReport;
}

export const CLIP_POSITIONS = 77;

/**
 * Everything `gyoza inspect` says about an opened checkpoint: format, architecture with its evidence,
 * components, dtypes, every tensor's dtype and shape, decoded metadata and warnings; for a LoRA or an
 * embedding, what it adapts (`lora`, `embedding`). Of the tensor data it reads only a few small
 * tensors (CLIP position_ids; one bias to tell SD 2.x v-prediction; a LoRA's alpha scalars).
 */
export async function inspectCheckpoint(checkpoint: Checkpoint): Promise<InspectReport> {
  const detection = await refinePrediction(detectArchitecture(checkpoint.tensors), checkpoint);
  const { spec, ...architecture } = detection;
  const components = summarizeComponents(checkpoint.tensors, spec?.components ?? []);
  const dtypes: Record<string, number> = {};
  const tensors: InspectReport["tensors"] = {};
  let parameters = 0;
  for (const [key, tensor] of checkpoint.tensors) {
    dtypes[tensor.dtype] = (dtypes[tensor.dtype] ?? 0) + 1;
    tensors[key] = { dtype: tensor.dtype, shape: [...tensor.shape] };
    parameters += elementCount(tensor.shape);
  }
  const report: InspectReport = {
    schema: "gyoza.inspect/1",
    file: checkpoint.path,
    size: checkpoint.size,
    format: checkpoint.format,
    architecture,
    components,
    parameters,
    dtypes,
    tensors,
    metadata: { ...checkpoint.metadata },
    decodedMetadata: decodeMetadata(checkpoint.metadata),
    warnings: await collectWarnings(checkpoint, detection),
  };
  if (checkpoint.format !== "safetensors") {
    report.pickle = { globals: [...checkpoint.pickleGlobals], extras: [...checkpoint.extras] };
  }
  const family = detection.family;
  const lora = family === "lora" || family === "unknown" ? await inspectLora(checkpoint) : undefined;
  if (lora) report.lora = lora;
  const embedding = family === "embedding" || family === "unknown" ? inspectEmbedding(checkpoint) : undefined;
  if (embedding) report.embedding = embedding;
  return report;
}

/** The CLIP position_ids tensors of a state dict (SD1 text encoder, SDXL clip_l). */
export function positionIdKeys(keys: Iterable<string>): string[] {
  return [...keys].filter((key) => key.endsWith("embeddings.position_ids"));
}

/** Whether a position_ids tensor holds int64 arange(77) — the values a merge must never interpolate. */
export async function checkPositionIds(tensor: StoredTensor): Promise<InspectWarning | undefined> {
  if (tensor.dtype !== "I64") {
    return {
      code: "position-ids-dtype",
      message: `${tensor.key} is ${tensor.dtype}, not I64: a merge treated it as float (shifts prompt tokens); fix with --fix-clip`,
    };
  }
  if (elementCount(tensor.shape) !== CLIP_POSITIONS) return undefined;
  const ids = new BigInt64Array((await readTensorBytes(tensor)).slice().buffer);
  const wrong = [...ids].flatMap((value, index) => (value === BigInt(index) ? [] : [index]));
  if (wrong.length === 0) return undefined;
  return {
    code: "position-ids-values",
    message: `${tensor.key} is not arange(77): ${wrong.length} positions differ (first at ${wrong[0]}); fix with --fix-clip`,
  };
}

async function collectWarnings(checkpoint: Checkpoint, detection: Detection): Promise<InspectWarning[]> {
  const warnings: InspectWarning[] = [];
  const keys = [...checkpoint.tensors.keys()];
  const ema = keys.filter((key) => key.startsWith("model_ema."));
  if (ema.length > 0) {
    warnings.push({
      code: "ema-present",
      message: `${ema.length} model_ema.* tensors (EMA weights): drop them with --prune`,
    });
  }
  for (const key of positionIdKeys(keys)) {
    const warning = await checkPositionIds(checkpoint.tensors.get(key)!);
    if (warning) warnings.push(warning);
  }
  const spec = detection.spec;
  if (spec?.layout) {
    const layout = getLayout(spec.layout);
    const junk = keys.filter((key) => !layout.byKey.has(key) && !key.startsWith("model_ema."));
    if (junk.length > 0) {
      warnings.push({
        code: "junk-keys",
        message: `${junk.length} keys outside the ${detection.name} layout (e.g. ${junk.slice(0, 3).join(", ")}): --prune drops them`,
      });
    }
    const missing = layout.entries.filter(
      (entry) =>
        !entry.optional &&
        !checkpoint.tensors.has(entry.key) &&
        !entry.aliases.some((a) => checkpoint.tensors.has(a)),
    );
    if (missing.length > 0) {
      const parts = new Set(missing.map((entry) => entry.component));
      warnings.push({
        code: "missing-keys",
        message: `${missing.length} keys of the reference layout are missing (components: ${[...parts].join(", ")}; e.g. ${missing[0]!.key})`,
      });
    }
  }
  const floatDtypesByComponent = new Map<string, Set<string>>();
  for (const tensor of checkpoint.tensors.values()) {
    if (!isFloatDType(tensor.dtype) || tensor.shape.length === 0) continue;
    const component = componentOf(tensor.key, spec?.components ?? []);
    if (component === "ema" || component === "other") continue;
    const set = floatDtypesByComponent.get(component) ?? new Set();
    set.add(tensor.dtype);
    floatDtypesByComponent.set(component, set);
  }
  const mixed = [...floatDtypesByComponent].filter(([, set]) => set.size > 1);
  const all = new Set([...floatDtypesByComponent.values()].flatMap((set) => [...set]));
  if (mixed.length > 0 || all.size > 1) {
    const detail = [...floatDtypesByComponent].map(([c, set]) => `${c}: ${[...set].join("/")}`).join(", ");
    warnings.push({
      code: "mixed-dtypes",
      message: `mixed float dtypes (${detail}); --dtype makes them uniform`,
    });
  }
  if (checkpoint.format !== "safetensors") {
    warnings.push({
      code: "pickle",
      message:
        "PyTorch pickle checkpoint (read safely here, but other tools execute it): convert it to safetensors",
    });
  }
  return warnings;
}
