import { inspectCheckpoint } from "../arch/inspect-checkpoint.js";
import { isGyozaError } from "../errors.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { type CivitaiFileFacts, civitaiFacts } from "../lineage/civitai-facts.js";
import { type FileProvenance, readFileProvenance } from "./file-provenance.js";

export const FILE_KINDS = ["checkpoint", "vae", "lora", "embedding", "unknown", "unreadable"] as const;
export type FileKind = (typeof FILE_KINDS)[number];

/** What the library records about a model file from its headers (no tensor data beyond inspect's few). */
export interface FileIdentity {
  kind: FileKind;
  /** For unreadable files: the parser's message (format error, limit hit, unsafe pickle, …). */
  unreadableReason: string | null;
  /** inspect's architecture id (sd1-ldm, sdxl-sgm, …) and family. */
  architecture: string | null;
  family: string | null;
  /** Component names present (unet, text_encoder, vae, ema, …). */
  components: string[];
  /** Civitai's files[].type and files[].metadata {fp, size, format}. */
  civitaiType: CivitaiFileFacts["type"];
  fp: CivitaiFileFacts["fp"];
  sizeKind: CivitaiFileFacts["size"] | null;
  format: CivitaiFileFacts["format"] | null;
  /** Checkpoints only: whether the file carries VAE weights (first_stage_model.*). */
  bakedVae: boolean | null;
  /** How the file was made (gyoza / A1111 / supermerger recipe, parents) and its modelspec title, from `__metadata__`. */
  provenance: FileProvenance | null;
}

const KIND_BY_FAMILY: Readonly<Record<string, FileKind>> = {
  sd1: "checkpoint",
  sd2: "checkpoint",
  sdxl: "checkpoint",
  vae: "vae",
  lora: "lora",
  embedding: "embedding",
};

/**
 * Identifies a model file with the same inspection `gyoza inspect` runs. Any failure to read it
 * (bad format, hostile limits, unsafe pickle, truncation) makes it "unreadable" with the reason:
 * a library scan records it and goes on.
 */
export async function identifyFile(path: string): Promise<FileIdentity> {
  let checkpoint: Awaited<ReturnType<typeof openCheckpoint>>;
  try {
    checkpoint = await openCheckpoint(path);
  } catch (error) {
    return unreadable(error);
  }
  try {
    const report = await inspectCheckpoint(checkpoint);
    const facts = civitaiFacts(report);
    const family = report.architecture.family;
    const kind = KIND_BY_FAMILY[family] ?? "unknown";
    const components = report.components
      .filter((component) => component.tensors > 0 && component.name !== "other")
      .map((component) => component.name);
    return {
      kind,
      unreadableReason: null,
      architecture: report.architecture.id,
      family,
      components,
      civitaiType: facts.type,
      fp: facts.fp,
      sizeKind: facts.size,
      format: facts.format,
      bakedVae: kind === "checkpoint" ? components.includes("vae") : null,
      provenance: readFileProvenance(checkpoint.metadata) ?? null,
    };
  } catch (error) {
    return unreadable(error);
  } finally {
    await checkpoint.close();
  }
}

function unreadable(error: unknown): FileIdentity {
  const reason = isGyozaError(error)
    ? `${error.code}: ${error.describe()}`
    : `unexpected: ${error instanceof Error ? error.message : String(error)}`;
  return {
    kind: "unreadable",
    unreadableReason: reason,
    architecture: null,
    family: null,
    components: [],
    civitaiType: null,
    fp: null,
    sizeKind: null,
    format: null,
    bakedVae: null,
    provenance: null,
  };
}
