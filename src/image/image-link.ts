import { basename } from "node:path";
import type { FileHashes, HashAlgorithm } from "../hash/index.js";
import type { GenerationInfo, ResourceRef } from "./generators/generation-info.js";

export type ResourceKind = "model" | "vae" | "lora" | "embedding";

/** A resource an image names, with the hash it recorded (if any). */
export interface RecordedResource {
  kind: ResourceKind;
  name?: string;
  hash?: string;
}

export interface LocalFile {
  file: string;
  hashes: FileHashes;
}

export interface ResourceMatch {
  file: string;
  /** Which file hash equalled the recorded one (`AutoV2`, `SHA256`, ...), or `file name` when the image recorded no hash. */
  via: string;
}

export interface ResourceLink extends RecordedResource {
  matches: ResourceMatch[];
  /** Whether Civitai would link this resource (it skips the empty-file hash and resources named "vae"). */
  civitaiLinks: boolean;
}

/** sha256 of zero bytes: a recorded hash that is a prefix of it names an empty file, not a model. */
const EMPTY_FILE_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** Shorter recorded hashes (a few hex digits) would match by chance. */
const MIN_HASH_HEX = 8;
const MODEL_EXTENSIONS = /\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$/i;

/** Recorded hashes as written: lowercase, without the `0x` (modelspec/SwarmUI) or `blake3:` (InvokeAI) prefix. */
export function normaliseHash(hash: string): { value: string; blake3Only: boolean } {
  const lower = hash.trim().toLowerCase();
  if (lower.startsWith("blake3:")) return { value: lower.slice(7), blake3Only: true };
  return { value: lower.replace(/^0x/, ""), blake3Only: false };
}

export function isEmptyFileHash(hash: string): boolean {
  const { value } = normaliseHash(hash);
  return value.length >= MIN_HASH_HEX && EMPTY_FILE_SHA256.startsWith(value);
}

export function recordedResources(info: GenerationInfo): RecordedResource[] {
  const out: RecordedResource[] = [];
  const add = (kind: ResourceKind, ref: ResourceRef | undefined) => {
    if (!ref || (ref.name === undefined && ref.hash === undefined)) return;
    out.push({
      kind,
      ...(ref.name === undefined ? {} : { name: ref.name }),
      ...(ref.hash === undefined ? {} : { hash: ref.hash }),
    });
  };
  add("model", info.model);
  add("vae", info.vae);
  for (const lora of info.loras) add("lora", lora);
  for (const embedding of info.embeddings) add("embedding", embedding);
  return out;
}

/** The hashes to compute for local files so every recorded hash can be compared. */
export function algorithmsFor(resources: readonly RecordedResource[]): HashAlgorithm[] {
  const algorithms = new Set<HashAlgorithm>(["sha256", "autov2", "autov3"]);
  for (const { hash } of resources) {
    if (!hash) continue;
    const { value, blake3Only } = normaliseHash(hash);
    if (blake3Only) algorithms.add("blake3");
    else if (value.length === 8) {
      algorithms.add("autov1");
      algorithms.add("crc32");
    }
  }
  return [...algorithms];
}

function fileHashCandidates(hashes: FileHashes): [string, string | null | undefined][] {
  return [
    ["SHA256", hashes.sha256],
    ["AutoV2", hashes.autoV2],
    ["AutoV3", hashes.autoV3],
    ["AutoV3 (full)", hashes.autoV3Full],
    ["AutoV1", hashes.autoV1],
    ["A1111 legacy hash", hashes.a1111?.modelHash],
    ["CRC32", hashes.crc32Civitai],
    ["CRC32", hashes.crc32],
  ];
}

function stem(name: string): string {
  return basename(name.replace(/\\/g, "/")).replace(MODEL_EXTENSIONS, "").toLowerCase();
}

/**
 * Links each recorded resource to local files the way Civitai does: exact, case-insensitive equality
 * of the recorded hash with any hash of the file (SHA256, AutoV1/V2/V3, CRC32, BLAKE3), ignoring the
 * empty-file hash. Resources recorded without a hash (ComfyUI) fall back to equal file names.
 */
export function linkResources(
  resources: readonly RecordedResource[],
  files: readonly LocalFile[],
): ResourceLink[] {
  return resources.map((resource) => {
    const matches: ResourceMatch[] = [];
    const usable =
      resource.hash !== undefined &&
      !isEmptyFileHash(resource.hash) &&
      normaliseHash(resource.hash).value.length >= MIN_HASH_HEX;
    if (usable) {
      const { value, blake3Only } = normaliseHash(resource.hash!);
      for (const { file, hashes } of files) {
        const candidates: [string, string | null | undefined][] = blake3Only
          ? [["BLAKE3", hashes.blake3]]
          : [...fileHashCandidates(hashes), ["BLAKE3", hashes.blake3]];
        const hit = candidates.find(
          ([, candidate]) => typeof candidate === "string" && candidate.toLowerCase() === value,
        );
        if (hit) matches.push({ file, via: hit[0] });
      }
    } else if (resource.hash === undefined && resource.name !== undefined) {
      const wanted = stem(resource.name);
      for (const { file } of files) if (stem(file) === wanted) matches.push({ file, via: "file name" });
    }
    const civitaiLinks = usable && resource.name?.toLowerCase() !== "vae" && resource.kind !== "vae";
    return { ...resource, matches, civitaiLinks };
  });
}

export function isModelFileName(name: string): boolean {
  return MODEL_EXTENSIONS.test(name);
}
