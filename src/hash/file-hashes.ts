import { unknownIdError } from "../errors.js";

/**
 * The hashes model sites and web UIs compute for a checkpoint file, with the exact definitions of
 * shared/docs/DOMAIN.md §5 (Civitai's model-file scanner, A1111's `sd_models`, kohya's
 * `addnet_hash_safetensors`).
 */
export const HASH_ALGORITHMS = ["sha256", "autov1", "autov2", "autov3", "blake3", "crc32"] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/** AutoV1 hashes the 64 KiB window at 1 MiB, as A1111's legacy `model_hash` does. */
export const AUTOV1_WINDOW_OFFSET = 0x100000;
export const AUTOV1_WINDOW_BYTES = 0x10000;
/** Civitai reports no AutoV1 for files shorter than 2 MiB (A1111 hashes whatever the window holds). */
export const AUTOV1_MIN_FILE_BYTES = 0x200000;
/** AutoV3 skips a safetensors header only when its declared length is below 16 MiB (Civitai's rule). */
export const AUTOV3_MAX_HEADER_BYTES = 16777216;
/** Bytes of the little-endian u64 header length that opens a safetensors file. */
export const AUTOV3_LENGTH_PREFIX_BYTES = 8;

/**
 * One file's hashes. Each field is present only when its algorithm was asked for (all by default):
 * - Civitai forms, uppercase hex: `sha256` (64), `autoV1` (8, null for files under 2 MiB),
 *   `autoV2` (first 10 of SHA256), `autoV3` (first 12 of the tensor-data SHA256), `autoV3Full` (64;
 *   lowercased it equals kohya's `sshs_model_hash` and `modelspec.hash_sha256` without "0x"),
 *   `blake3` (64), `crc32Civitai` (the CRC's 4 bytes little-endian, as Civitai prints it: "85114A0D"
 *   for "hello world").
 * - `crc32`: the usual big-endian IEEE CRC-32 ("0D4A1185" for "hello world").
 * - `a1111`, lowercase: `modelHash` (legacy 8-hex `model_hash`: the AutoV1 window with no size
 *   check) and `shorthash` (10 hex, the `Model hash` written into image infotext).
 */
export interface FileHashes {
  sha256?: string;
  autoV1?: string | null;
  autoV2?: string;
  autoV3?: string;
  autoV3Full?: string;
  blake3?: string;
  crc32?: string;
  crc32Civitai?: string;
  a1111?: { modelHash?: string; shorthash?: string };
}

/** The streams a single pass feeds; AutoV1 needs only its 64 KiB window, read on the side. */
export type HashStream = "sha256" | "autov3" | "blake3" | "crc32";

/** Digests as the streams produce them: lowercase hex, the CRC as an unsigned number. */
export interface RawDigests {
  sha256?: string;
  autov3?: string;
  blake3?: string;
  crc32?: number;
  /** sha256 of the AutoV1 window (whatever part of it the file holds). */
  autov1Window?: string;
}

/** Parses a comma-separated `--algo` list (case-insensitive, "all" for everything). */
export function parseHashAlgorithms(list: string): HashAlgorithm[] {
  const chosen = new Set<HashAlgorithm>();
  for (const part of list.split(",")) {
    const name = part.trim().toLowerCase();
    if (name === "") continue;
    if (name === "all") return [...HASH_ALGORITHMS];
    if (!(HASH_ALGORITHMS as readonly string[]).includes(name)) {
      throw unknownIdError("hash algorithm", name, [...HASH_ALGORITHMS, "all"]);
    }
    chosen.add(name as HashAlgorithm);
  }
  if (chosen.size === 0) return [...HASH_ALGORITHMS];
  return HASH_ALGORITHMS.filter((algorithm) => chosen.has(algorithm));
}

/** The streams a set of algorithms needs (AutoV2 is a cut of SHA256). */
export function streamsFor(algorithms: readonly HashAlgorithm[]): HashStream[] {
  const streams = new Set<HashStream>();
  for (const algorithm of algorithms) {
    if (algorithm === "sha256" || algorithm === "autov2") streams.add("sha256");
    else if (algorithm === "autov3" || algorithm === "blake3" || algorithm === "crc32")
      streams.add(algorithm);
  }
  return [...streams];
}

/**
 * Where AutoV3's hashed bytes begin. Files shorter than 8 bytes hash no bytes (Python's reads past
 * the end return nothing, so both Civitai's and kohya's code give sha256 of "" for them), and so do
 * files whose declared header runs past their end.
 */
export function autoV3Start(firstBytes: Uint8Array, fileSize: number): number {
  if (fileSize < AUTOV3_LENGTH_PREFIX_BYTES) return fileSize;
  const view = new DataView(firstBytes.buffer, firstBytes.byteOffset, AUTOV3_LENGTH_PREFIX_BYTES);
  const declared = view.getBigUint64(0, true);
  const start =
    declared < BigInt(AUTOV3_MAX_HEADER_BYTES)
      ? AUTOV3_LENGTH_PREFIX_BYTES + Number(declared)
      : AUTOV3_LENGTH_PREFIX_BYTES;
  return Math.min(start, fileSize);
}

/** Turns raw digests into the documented `FileHashes` shape, keeping only the algorithms asked for. */
export function formatFileHashes(
  raw: RawDigests,
  fileSize: number,
  algorithms: readonly HashAlgorithm[],
): FileHashes {
  const wanted = new Set(algorithms);
  const hashes: FileHashes = {};
  const a1111: NonNullable<FileHashes["a1111"]> = {};
  const sha256 = raw.sha256?.toUpperCase();
  if (wanted.has("sha256")) hashes.sha256 = required(sha256, "sha256");
  if (wanted.has("autov1")) {
    const window = required(raw.autov1Window, "autov1");
    hashes.autoV1 = fileSize < AUTOV1_MIN_FILE_BYTES ? null : window.slice(0, 8).toUpperCase();
    a1111.modelHash = window.slice(0, 8).toLowerCase();
  }
  if (wanted.has("autov2")) {
    hashes.autoV2 = required(sha256, "autov2").slice(0, 10);
    a1111.shorthash = hashes.autoV2.toLowerCase();
  }
  if (wanted.has("autov3")) {
    const full = required(raw.autov3, "autov3").toUpperCase();
    hashes.autoV3 = full.slice(0, 12);
    hashes.autoV3Full = full;
  }
  if (wanted.has("blake3")) hashes.blake3 = required(raw.blake3, "blake3").toUpperCase();
  if (wanted.has("crc32")) {
    const crc = required(raw.crc32, "crc32");
    hashes.crc32 = crc32Hex(crc);
    hashes.crc32Civitai = crc32Hex(byteSwap32(crc));
  }
  if (wanted.has("autov1") || wanted.has("autov2")) hashes.a1111 = a1111;
  return hashes;
}

/** Whether `hashes` holds every field the algorithms produce (for cache hits). */
export function hasAlgorithms(hashes: FileHashes, algorithms: readonly HashAlgorithm[]): boolean {
  return algorithms.every((algorithm) => {
    switch (algorithm) {
      case "sha256":
        return hashes.sha256 !== undefined;
      case "autov1":
        return hashes.autoV1 !== undefined && hashes.a1111?.modelHash !== undefined;
      case "autov2":
        return hashes.autoV2 !== undefined && hashes.a1111?.shorthash !== undefined;
      case "autov3":
        return hashes.autoV3 !== undefined && hashes.autoV3Full !== undefined;
      case "blake3":
        return hashes.blake3 !== undefined;
      case "crc32":
        return hashes.crc32 !== undefined && hashes.crc32Civitai !== undefined;
    }
    return false;
  });
}

/** The fields of `hashes` that the algorithms produce, in the documented order. */
export function pickAlgorithms(hashes: FileHashes, algorithms: readonly HashAlgorithm[]): FileHashes {
  const wanted = new Set(algorithms);
  const picked: FileHashes = {};
  if (wanted.has("sha256")) picked.sha256 = hashes.sha256;
  if (wanted.has("autov1")) picked.autoV1 = hashes.autoV1;
  if (wanted.has("autov2")) picked.autoV2 = hashes.autoV2;
  if (wanted.has("autov3")) {
    picked.autoV3 = hashes.autoV3;
    picked.autoV3Full = hashes.autoV3Full;
  }
  if (wanted.has("blake3")) picked.blake3 = hashes.blake3;
  if (wanted.has("crc32")) {
    picked.crc32 = hashes.crc32;
    picked.crc32Civitai = hashes.crc32Civitai;
  }
  if (wanted.has("autov1") || wanted.has("autov2")) {
    picked.a1111 = {};
    if (wanted.has("autov1")) picked.a1111.modelHash = hashes.a1111?.modelHash;
    if (wanted.has("autov2")) picked.a1111.shorthash = hashes.a1111?.shorthash;
  }
  return picked;
}

/** Combines two results for the same file contents (a cache entry and a fresh partial pass). */
export function mergeFileHashes(older: FileHashes, newer: FileHashes): FileHashes {
  const merged: FileHashes = { ...older, ...newer };
  if (older.a1111 || newer.a1111) merged.a1111 = { ...older.a1111, ...newer.a1111 };
  return merged;
}

function crc32Hex(value: number): string {
  return (value >>> 0).toString(16).padStart(8, "0").toUpperCase();
}

function byteSwap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}

function required<T>(value: T | undefined, algorithm: string): T {
  if (value === undefined) throw new Error(`internal: the ${algorithm} digest was not computed`);
  return value;
}
