import { decodeJsonString } from "../../metadata/decode-metadata.js";

/**
 * The training record kohya's sd-scripts writes into a LoRA's `__metadata__` (`ss_*`, all strings;
 * see train_network.py), summarised. Values the trainer left empty ("None", "") are left out.
 */
export interface TrainingSummary {
  /** ss_output_name: the name the trainer gave the file. */
  outputName?: string;
  /** ss_network_module, e.g. networks.lora, lycoris.kohya. */
  networkModule?: string;
  /** ss_network_dim: the rank it was trained with. */
  networkDim?: number;
  /** ss_network_alpha. */
  networkAlpha?: number;
  /** ss_network_args, decoded (LyCORIS: {algo, conv_dim, …}). */
  networkArgs?: unknown;
  /** ss_base_model_version, e.g. sd_v1, sdxl_base_v1-0. */
  baseModelVersion?: string;
  /** ss_sd_model_name: the checkpoint it was trained on. */
  sdModelName?: string;
  /** ss_new_sd_model_hash (sha256) or ss_sd_model_hash (legacy) of that checkpoint. */
  sdModelHash?: string;
  trainingComment?: string;
  /** ss_epoch: the epoch this file was saved at; ss_num_epochs: the epochs planned. */
  epoch?: number;
  epochs?: number;
  /** ss_steps: training steps done. */
  steps?: number;
  images?: number;
  resolution?: string;
  clipSkip?: number;
  learningRate?: number;
  unetLearningRate?: number;
  textEncoderLearningRate?: number;
  optimizer?: string;
  scheduler?: string;
  mixedPrecision?: string;
  seed?: number;
  /** ss_training_started_at / ss_training_finished_at (Unix seconds), as ISO-8601. */
  startedAt?: string;
  finishedAt?: string;
  /** ss_tag_frequency: caption tags per dataset folder, summarised. */
  tags?: TagSummary;
  /** ss_* keys not summarised above (the raw values stay in the report's `metadata`). */
  otherKeys: string[];
}

export interface TagSummary {
  /** Dataset folders with captions. */
  folders: number;
  /** Distinct tags over all folders. */
  distinct: number;
  /** The most frequent tags, summed over folders, most frequent first. */
  top: { tag: string; count: number }[];
}

/** How many of the most frequent tags a summary lists. */
export const TOP_TAGS = 10;

type Field = [key: string, field: keyof TrainingSummary, kind: "text" | "number" | "json" | "time"];

const FIELDS: readonly Field[] = [
  ["ss_output_name", "outputName", "text"],
  ["ss_network_module", "networkModule", "text"],
  ["ss_network_dim", "networkDim", "number"],
  ["ss_network_alpha", "networkAlpha", "number"],
  ["ss_network_args", "networkArgs", "json"],
  ["ss_base_model_version", "baseModelVersion", "text"],
  ["ss_sd_model_name", "sdModelName", "text"],
  ["ss_training_comment", "trainingComment", "text"],
  ["ss_epoch", "epoch", "number"],
  ["ss_num_epochs", "epochs", "number"],
  ["ss_steps", "steps", "number"],
  ["ss_num_train_images", "images", "number"],
  ["ss_resolution", "resolution", "text"],
  ["ss_clip_skip", "clipSkip", "number"],
  ["ss_learning_rate", "learningRate", "number"],
  ["ss_unet_lr", "unetLearningRate", "number"],
  ["ss_text_encoder_lr", "textEncoderLearningRate", "number"],
  ["ss_optimizer", "optimizer", "text"],
  ["ss_lr_scheduler", "scheduler", "text"],
  ["ss_mixed_precision", "mixedPrecision", "text"],
  ["ss_seed", "seed", "number"],
  ["ss_training_started_at", "startedAt", "time"],
  ["ss_training_finished_at", "finishedAt", "time"],
];

/** Keys read by the summary besides FIELDS. */
const OTHER_READ = new Set(["ss_new_sd_model_hash", "ss_sd_model_hash", "ss_tag_frequency"]);

/** The ss_* training record of a LoRA, or undefined when the file has none. */
export function summarizeTraining(metadata: Readonly<Record<string, unknown>>): TrainingSummary | undefined {
  const keys = Object.keys(metadata).filter((key) => key.startsWith("ss_"));
  if (keys.length === 0) return undefined;
  const summary: TrainingSummary = { otherKeys: [] };
  const record = summary as unknown as Record<string, unknown>;
  for (const [key, field, kind] of FIELDS) {
    const value = present(metadata[key]);
    if (value === undefined) continue;
    const parsed =
      kind === "number"
        ? numberOf(value)
        : kind === "json"
          ? decodeJsonString(value)
          : kind === "time"
            ? timeOf(value)
            : value;
    if (parsed !== undefined) record[field] = parsed;
  }
  const hash = present(metadata.ss_new_sd_model_hash) ?? present(metadata.ss_sd_model_hash);
  if (hash) summary.sdModelHash = hash;
  const tags = tagSummary(metadata.ss_tag_frequency);
  if (tags) summary.tags = tags;
  const read = new Set([...FIELDS.map(([key]) => key), ...OTHER_READ]);
  summary.otherKeys = keys.filter((key) => !read.has(key)).sort();
  return summary;
}

function present(value: unknown): string | undefined {
  if (typeof value === "number") return String(value);
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  return trimmed === "" || trimmed === "None" ? undefined : trimmed;
}

function numberOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

function timeOf(value: string): string | undefined {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/**
 * ss_tag_frequency: `{folder: {tag: count}}` as a JSON string (safetensors) or a nested dict (a
 * pickled .pt). A value that is not that shape gives no summary.
 */
export function tagSummary(raw: unknown): TagSummary | undefined {
  const value = typeof raw === "string" ? decodeJsonString(raw) : raw;
  if (!isRecord(value)) return undefined;
  const totals = new Map<string, number>();
  let folders = 0;
  for (const tags of Object.values(value)) {
    if (!isRecord(tags)) continue;
    folders++;
    for (const [tag, count] of Object.entries(tags)) {
      if (typeof count !== "number" || !Number.isFinite(count)) continue;
      const name = tag.trim();
      totals.set(name, (totals.get(name) ?? 0) + count);
    }
  }
  if (folders === 0) return undefined;
  const top = [...totals]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, TOP_TAGS)
    .map(([tag, count]) => ({ tag, count }));
  return { folders, distinct: totals.size, top };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
