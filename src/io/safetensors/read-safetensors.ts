import { GyozaError } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";
import { type DType, dtypeBytes, elementCount, isDType } from "../dtype.js";
import type { Checkpoint, StoredTensor } from "../tensor.js";

/** Largest JSON header accepted: the reference implementation's limit (CWE-770: a hostile length must not allocate gigabytes). */
export const MAX_HEADER_BYTES = 100_000_000;
/** Tensors in one file; SDXL has ~2,600, LoRAs a few thousand: 1M bounds the per-entry work. */
export const MAX_TENSORS = 1_000_000;
/** Dimensions of one tensor; real models use ≤ 5. */
export const MAX_RANK = 32;
/** A __metadata__ value is a string; this bounds a single one (thumbnails as data URIs are the largest seen). */
export const MAX_METADATA_ENTRIES = 100_000;

export interface SafetensorsHeader {
  /** Length of the JSON header in bytes (the u64 at the start of the file). */
  readonly headerLength: number;
  /** Absolute offset of the data section: 8 + headerLength. */
  readonly dataOffset: number;
  readonly metadata: Record<string, string>;
  /** Tensors in data order, with absolute byte offsets. */
  readonly tensors: ReadonlyMap<string, StoredTensor>;
}

/**
 * Reads and validates a safetensors header. Every number comes from an untrusted file: the header
 * length, each dtype, shape and offset pair are checked against the file size, and the data
 * regions must tile the data section exactly (no overlap, no gap), as the reference reader demands.
 */
export async function readSafetensorsHeader(source: ByteSource): Promise<SafetensorsHeader> {
  const fail = (message: string, path?: string) =>
    new GyozaError("format", message, { file: source.name, path });
  if (source.size < 8) throw fail(`file of ${source.size} bytes is too short for a safetensors header`);
  const lengthBytes = await source.read(0, 8);
  const declared = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new GyozaError(
      "limit",
      `header claims ${declared} bytes, over the ${MAX_HEADER_BYTES}-byte limit`,
      {
        file: source.name,
      },
    );
  }
  const headerLength = Number(declared);
  if (8 + headerLength > source.size) {
    throw fail(
      `header claims ${headerLength} bytes but the file has only ${source.size - 8} after the length`,
    );
  }
  if (headerLength < 2) throw fail(`header of ${headerLength} bytes cannot hold a JSON object`);
  const headerBytes = await source.read(8, headerLength);
  if (headerBytes[0] !== 0x7b) throw fail("header does not start with '{'");
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (cause) {
    throw new GyozaError("format", `header is not valid UTF-8 JSON: ${(cause as Error).message}`, {
      file: source.name,
      cause,
    });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw fail("header is not a JSON object");

  const dataOffset = 8 + headerLength;
  const dataSize = source.size - dataOffset;
  let metadata: Record<string, string> = Object.create(null);
  const entries: { key: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (key === "__metadata__") {
      metadata = parseMetadata(value, fail);
      continue;
    }
    if (entries.length >= MAX_TENSORS) {
      throw new GyozaError("limit", `more than ${MAX_TENSORS} tensors`, { file: source.name });
    }
    entries.push(parseEntry(key, value, fail));
  }

  entries.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let expectedBegin = 0;
  const tensors = new Map<string, StoredTensor>();
  for (const entry of entries) {
    if (entry.begin !== expectedBegin) {
      throw fail(
        entry.begin < expectedBegin
          ? `data region [${entry.begin}, ${entry.end}) overlaps the previous tensor (which ends at ${expectedBegin})`
          : `gap in the data section: nothing covers bytes [${expectedBegin}, ${entry.begin})`,
        entry.key,
      );
    }
    if (entry.end > dataSize) {
      // Regions so far were contiguous: the header is whole and the data stops early (a cut download).
      const described = entries.reduce((end, other) => Math.max(end, other.end), 0);
      throw new GyozaError(
        "format",
        `the file is truncated: its header describes ${described} bytes of tensor data but only ${dataSize} are there (${entry.key} runs past the end of the file)`,
        { file: source.name, fix: "download or copy the file again" },
      );
    }
    expectedBegin = entry.end;
    tensors.set(entry.key, {
      key: entry.key,
      dtype: entry.dtype,
      shape: entry.shape,
      source,
      byteOffset: dataOffset + entry.begin,
      strides: null,
      byteLength: entry.end - entry.begin,
    });
  }
  if (expectedBegin !== dataSize) {
    throw fail(`tensors cover ${expectedBegin} bytes but the data section holds ${dataSize}: trailing bytes`);
  }
  return { headerLength, dataOffset, metadata, tensors };
}

function parseMetadata(
  value: unknown,
  fail: (message: string, path?: string) => GyozaError,
): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw fail("__metadata__ is not an object");
  const metadata: Record<string, string> = Object.create(null);
  const pairs = Object.entries(value);
  if (pairs.length > MAX_METADATA_ENTRIES)
    throw fail(`__metadata__ has more than ${MAX_METADATA_ENTRIES} entries`);
  for (const [key, item] of pairs) {
    if (typeof item !== "string") throw fail(`__metadata__ value is not a string`, `__metadata__.${key}`);
    metadata[key] = item;
  }
  return metadata;
}

function parseEntry(
  key: string,
  value: unknown,
  fail: (message: string, path?: string) => GyozaError,
): { key: string; dtype: DType; shape: number[]; begin: number; end: number } {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw fail("tensor entry is not an object", key);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== "string" || !isDType(dtype)) throw fail(`unknown dtype ${JSON.stringify(dtype)}`, key);
  if (!Array.isArray(shape) || shape.length > MAX_RANK)
    throw fail("shape is not an array of at most 32 dimensions", key);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw fail(`shape ${JSON.stringify(shape)} is invalid`, key);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw fail(`data_offsets ${JSON.stringify(offsets)} are invalid`, key);
  }
  const [begin, end] = offsets as [number, number];
  let expectedBytes: number;
  try {
    expectedBytes = elementCount(shape as number[]) * dtypeBytes(dtype);
  } catch {
    throw fail(`shape ${JSON.stringify(shape)} is too large`, key);
  }
  if (end - begin !== expectedBytes) {
    throw fail(
      `shape ${JSON.stringify(shape)} of ${dtype} needs ${expectedBytes} bytes but data_offsets span ${end - begin}`,
      key,
    );
  }
  return { key, dtype, shape: shape as number[], begin, end };
}

export async function openSafetensors(source: ByteSource, path: string): Promise<Checkpoint> {
  const header = await readSafetensorsHeader(source);
  return {
    path,
    format: "safetensors",
    size: source.size,
    tensors: header.tensors,
    metadata: header.metadata,
    pickleGlobals: [],
    extras: [],
    close: () => source.close(),
  };
}
