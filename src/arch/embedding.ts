import { basename, extname } from "node:path";
import type { Checkpoint, PickleScalar, StoredTensor } from "../io/tensor.js";

/** A text encoder an embedding's vectors are for, told by their width. */
export type EmbeddingEncoder = "clip_l" | "openclip_h" | "clip_g";

/** What `gyoza inspect` says about a textual-inversion embedding (`embedding` in the JSON report). */
export interface EmbeddingReport {
  /** The word to write in a prompt: the file name stem (A1111 and ComfyUI use it, not the stored name). */
  token: string;
  /** A1111's .pt (`string_to_param.*`), the one-tensor safetensors layout (`emb_params`), or SDXL's clip_l + clip_g. */
  layout: "a1111-pt" | "emb_params" | "sdxl";
  /** Vectors per text encoder: how many prompt tokens the embedding takes up. */
  vectors: number;
  base: "sd1" | "sd2" | "sdxl" | "unknown";
  encoders: { encoder: EmbeddingEncoder | "unknown"; key: string; vectors: number; width: number }[];
  /** What A1111's training recorded (its .pt keys; gyoza's convert keeps them as safetensors metadata). */
  training?: { name?: string; step?: number; sdCheckpoint?: string; sdCheckpointName?: string };
  issues: string[];
}

/** Tensor key → layout: the single-file embedding layouts of A1111 and kohya (DOMAIN.md §7). */
const A1111_PT_KEY = "string_to_param.*";
const SAFETENSORS_KEY = "emb_params";
const SDXL_KEYS = ["clip_l", "clip_g"] as const;

/** Width of the vectors → the text encoder they feed. */
const ENCODER_BY_WIDTH: Readonly<Record<number, EmbeddingEncoder>> = {
  768: "clip_l", // SD 1.x CLIP ViT-L/14, SDXL's first encoder
  1024: "openclip_h", // SD 2.x OpenCLIP ViT-H
  1280: "clip_g", // SDXL's OpenCLIP bigG
};

/** The A1111 .pt fields kept as safetensors metadata by `embeddingForSafetensors`, under the same names. */
const TRAINING_FIELDS = ["name", "step", "sd_checkpoint", "sd_checkpoint_name"] as const;

/** The embedding report of a checkpoint, or undefined when it is no textual-inversion embedding. */
export function inspectEmbedding(checkpoint: Checkpoint): EmbeddingReport | undefined {
  const tensors = checkpoint.tensors;
  const issues: string[] = [];
  let layout: EmbeddingReport["layout"];
  let keys: string[];
  if (SDXL_KEYS.every((key) => tensors.has(key))) [layout, keys] = ["sdxl", [...SDXL_KEYS]];
  else if (tensors.has(A1111_PT_KEY)) [layout, keys] = ["a1111-pt", [A1111_PT_KEY]];
  else if (tensors.has(SAFETENSORS_KEY)) [layout, keys] = ["emb_params", [SAFETENSORS_KEY]];
  else return undefined;
  const encoders = keys.map((key) => {
    const shape = vectorsShape(tensors.get(key)!);
    return {
      encoder: ENCODER_BY_WIDTH[shape[1]] ?? ("unknown" as const),
      key,
      vectors: shape[0],
      width: shape[1],
    };
  });
  const counts = new Set(encoders.map((e) => e.vectors));
  if (counts.size > 1)
    issues.push(
      `the encoders hold different vector counts (${encoders.map((e) => `${e.key} ${e.vectors}`).join(", ")})`,
    );
  const others = [...tensors.keys()].filter((key) => !keys.includes(key));
  if (others.length > 0) issues.push(`other tensors beside the embedding: ${others.slice(0, 3).join(", ")}`);
  for (const e of encoders)
    if (e.encoder === "unknown")
      issues.push(`${e.key}: vectors of width ${e.width} fit no known text encoder`);
  const training = trainingOf(checkpoint);
  return {
    token: tokenOf(checkpoint.path),
    layout,
    vectors: encoders[0]!.vectors,
    base: baseOf(layout, encoders),
    encoders,
    ...(training ? { training } : {}),
    issues,
  };
}

/** The prompt token of an embedding file: its name without the extension, as A1111 loads it. */
export function tokenOf(path: string): string {
  const name = basename(path);
  return name.slice(0, name.length - extname(name).length);
}

/** [vectors, width] of an embedding tensor; a single vector may be stored 1-D. */
function vectorsShape(tensor: StoredTensor): [number, number] {
  const shape = tensor.shape;
  if (shape.length === 1) return [1, shape[0]!];
  return [shape.slice(0, -1).reduce((a, b) => a * b, 1), shape[shape.length - 1]!];
}

function baseOf(
  layout: EmbeddingReport["layout"],
  encoders: EmbeddingReport["encoders"],
): EmbeddingReport["base"] {
  if (layout === "sdxl")
    return encoders[0]!.width === 768 && encoders[1]!.width === 1280 ? "sdxl" : "unknown";
  const encoder = encoders[0]!.encoder;
  return encoder === "clip_l" ? "sd1" : encoder === "openclip_h" ? "sd2" : "unknown";
}

function trainingOf(checkpoint: Checkpoint): EmbeddingReport["training"] | undefined {
  const value = (field: string): PickleScalar | undefined =>
    checkpoint.scalars?.get(field) ?? checkpoint.metadata[field];
  const text = (field: string) => {
    const raw = value(field);
    return raw === undefined || raw === null || raw === "" ? undefined : String(raw);
  };
  const step = Number(text("step"));
  const training = {
    ...(text("name") ? { name: text("name")! } : {}),
    ...(Number.isFinite(step) && text("step") ? { step } : {}),
    ...(text("sd_checkpoint") ? { sdCheckpoint: text("sd_checkpoint")! } : {}),
    ...(text("sd_checkpoint_name") ? { sdCheckpointName: text("sd_checkpoint_name")! } : {}),
  };
  return Object.keys(training).length > 0 ? training : undefined;
}

/**
 * An A1111 .pt embedding as A1111's safetensors layout: its `string_to_param.*` tensor renamed
 * `emb_params` (the one-tensor file A1111, ComfyUI and kohya load), and the training record of the
 * .pt (name, step, sd_checkpoint, sd_checkpoint_name) as metadata of the same names. Undefined for
 * anything else (safetensors embeddings and SDXL's clip_l/clip_g are already in their layout).
 */
export function embeddingForSafetensors(
  checkpoint: Checkpoint,
): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } | undefined {
  const tensor = checkpoint.tensors.get(A1111_PT_KEY);
  if (!tensor || checkpoint.tensors.size !== 1) return undefined;
  const tensors = new Map([[SAFETENSORS_KEY, { ...tensor, key: SAFETENSORS_KEY }]]);
  const metadata: Record<string, string> = {};
  for (const field of TRAINING_FIELDS) {
    const value = checkpoint.scalars?.get(field);
    if (value !== undefined && value !== null && value !== "") metadata[field] = String(value);
  }
  return { tensors, metadata };
}
