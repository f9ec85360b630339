import { isGyozaError } from "../errors.js";
import type { ByteSource } from "../io/byte-source.js";
import { crc32 } from "./crc32.js";
import { readExifTexts } from "./exif-reader.js";
import type { ImageMetadata, MetadataText } from "./metadata-types.js";
import { decodePngText, type PngTextType } from "./png-text.js";
import { ReadAhead } from "./read-ahead.js";

export const PNG_SIGNATURE = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);

/** Text chunks are kilobytes (a big ComfyUI workflow a few MB); larger ones are skipped, not read. */
export const MAX_TEXT_CHUNK_BYTES = 64 * 1024 * 1024;
/** A 100 MB image in 8 KB IDATs has ~12k chunks; hundreds of thousands of tiny chunks is a hostile file. */
export const MAX_PNG_CHUNKS = 200_000;

const CHUNK_OVERHEAD_BYTES = 12; // length, type, CRC
const TEXT_TYPES = new Set(["tEXt", "zTXt", "iTXt"]);

export interface PngChunkInfo {
  type: string;
  /** Offset of the chunk's length field. */
  offset: number;
  length: number;
}

function chunkType(bytes: Uint8Array): string {
  return String.fromCharCode(bytes[4]!, bytes[5]!, bytes[6]!, bytes[7]!);
}

/** Walks a PNG's chunks, reading only IHDR, text and eXIf bodies; IDAT is never read. Throws only for a non-PNG. */
export async function readPngMetadata(
  source: ByteSource,
): Promise<ImageMetadata & { chunks: PngChunkInfo[] }> {
  const texts: MetadataText[] = [];
  const warnings: string[] = [];
  const chunks: PngChunkInfo[] = [];
  let width: number | undefined;
  let height: number | undefined;
  let offset = PNG_SIGNATURE.length;
  let sawEnd = false;
  const reader = new ReadAhead(source);
  while (offset < source.size) {
    if (chunks.length >= MAX_PNG_CHUNKS) {
      warnings.push(`more than ${MAX_PNG_CHUNKS} chunks; stopped reading at offset ${offset}`);
      break;
    }
    const remaining = source.size - offset;
    if (remaining < CHUNK_OVERHEAD_BYTES) {
      warnings.push(`${remaining} stray bytes at offset ${offset}, too few for a chunk`);
      break;
    }
    const head = await reader.read(offset, 8);
    const length = new DataView(head.buffer, head.byteOffset, 8).getUint32(0);
    const type = chunkType(head);
    if (!/^[A-Za-z]{4}$/.test(type)) {
      warnings.push(`invalid chunk type at offset ${offset}; stopped reading`);
      break;
    }
    if (length > remaining - CHUNK_OVERHEAD_BYTES) {
      warnings.push(
        `chunk ${type} at offset ${offset} declares ${length} bytes but only ${remaining - 8} remain`,
      );
      break;
    }
    chunks.push({ type, offset, length });
    const wanted = TEXT_TYPES.has(type) || type === "eXIf" || type === "IHDR";
    if (wanted && length > MAX_TEXT_CHUNK_BYTES) {
      warnings.push(
        `${type} chunk at offset ${offset} of ${length} bytes is over the ${MAX_TEXT_CHUNK_BYTES}-byte limit; skipped`,
      );
    } else if (wanted) {
      const whole = await reader.read(offset + 4, length + 8);
      const body = whole.subarray(4, 4 + length);
      const stored = new DataView(whole.buffer, whole.byteOffset + 4 + length, 4).getUint32(0);
      const computed = crc32(whole.subarray(0, 4 + length));
      if (stored !== computed) {
        warnings.push(
          `CRC mismatch in ${type} at offset ${offset} (stored ${hex(stored)}, computed ${hex(computed)}); text kept`,
        );
      }
      if (type === "IHDR" && length >= 8) {
        const view = new DataView(body.buffer, body.byteOffset, length);
        width = view.getUint32(0);
        height = view.getUint32(4);
      } else if (type === "eXIf") {
        texts.push(...readExifTexts(body, warnings, `eXIf at offset ${offset}`).texts);
      } else if (type !== "IHDR") {
        try {
          const decoded = decodePngText(type as PngTextType, body);
          texts.push({ key: decoded.keyword, text: decoded.text, origin: `${type} (${decoded.encoding})` });
        } catch (error) {
          if (!isGyozaError(error)) throw error;
          warnings.push(`${type} chunk at offset ${offset}: ${error.message}; skipped`);
        }
      }
    }
    offset += length + CHUNK_OVERHEAD_BYTES;
    if (type === "IEND") {
      sawEnd = true;
      break;
    }
  }
  if (!sawEnd) warnings.push("no IEND chunk (the file is truncated)");
  return { container: "png", width, height, texts, warnings, chunks };
}

function hex(value: number): string {
  return value.toString(16).padStart(8, "0");
}
