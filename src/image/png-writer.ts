import { GyozaError } from "../errors.js";
import { crc32 } from "./crc32.js";
import { PNG_SIGNATURE } from "./png-reader.js";
import { encodePngText } from "./png-text.js";

/** Chunks that carry metadata text; everything else (IHDR, PLTE, IDAT, iCCP, ...) belongs to the pixels. */
export const PNG_METADATA_CHUNKS: ReadonlySet<string> = new Set(["tEXt", "zTXt", "iTXt", "eXIf"]);

export interface RawPngChunk {
  type: string;
  /** The whole chunk: length, type, data, CRC, exactly as in the file. */
  bytes: Uint8Array;
}

/** Splits a complete PNG into chunks; a writer refuses damaged input instead of guessing. */
export function splitPng(bytes: Uint8Array, name = "<png>"): RawPngChunk[] {
  if (bytes.length < 8 || !PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) {
    throw new GyozaError("format", "not a PNG file", { file: name });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: RawPngChunk[] = [];
  let offset = 8;
  while (offset < bytes.length) {
    if (offset + 12 > bytes.length)
      throw new GyozaError("format", `truncated chunk at offset ${offset}`, { file: name });
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    if (length > bytes.length - offset - 12) {
      throw new GyozaError(
        "format",
        `chunk ${type} at offset ${offset} declares ${length} bytes, past the end`,
        {
          file: name,
          fix: "the file is truncated; re-export it before writing metadata",
        },
      );
    }
    chunks.push({ type, bytes: bytes.subarray(offset, offset + 12 + length) });
    offset += 12 + length;
    if (type === "IEND") break;
  }
  if (chunks[0]?.type !== "IHDR")
    throw new GyozaError("format", "PNG does not start with IHDR", { file: name });
  if (chunks[chunks.length - 1]?.type !== "IEND")
    throw new GyozaError("format", "PNG has no IEND chunk", { file: name });
  return chunks;
}

export function makePngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A text chunk as PIL writes it for A1111: tEXt when Latin-1, uncompressed iTXt otherwise. */
export function makePngTextChunk(keyword: string, text: string): Uint8Array {
  const { type, data } = encodePngText(keyword, text);
  return makePngChunk(type, data);
}

/**
 * Drops the metadata chunks of `png` and inserts `chunks` right after IHDR (where PIL puts text
 * and where eXIf must be, before IDAT). Every other chunk is copied byte for byte.
 */
export function replacePngMetadata(
  png: Uint8Array,
  chunks: readonly Uint8Array[],
  name?: string,
): Uint8Array {
  const kept = splitPng(png, name).filter((chunk) => !PNG_METADATA_CHUNKS.has(chunk.type));
  const parts = [PNG_SIGNATURE, kept[0]!.bytes, ...chunks, ...kept.slice(1).map((chunk) => chunk.bytes)];
  return Buffer.concat(parts);
}

/** The metadata chunks of a PNG, whole and in order, ready to be carried to another PNG. */
export function pngMetadataChunks(png: Uint8Array, name?: string): Uint8Array[] {
  return splitPng(png, name)
    .filter((chunk) => PNG_METADATA_CHUNKS.has(chunk.type))
    .map((chunk) => chunk.bytes);
}
