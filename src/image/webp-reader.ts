import type { ByteSource } from "../io/byte-source.js";
import { readExifTexts } from "./exif-reader.js";
import { EXIF_APP1_HEADER, startsWithAscii } from "./jpeg-reader.js";
import type { ImageMetadata, MetadataText } from "./metadata-types.js";
import { ReadAhead } from "./read-ahead.js";
import { decodeUtf8 } from "./text-codec.js";

/** Metadata chunks are small; an EXIF chunk larger than this is skipped rather than read. */
export const MAX_WEBP_METADATA_BYTES = 64 * 1024 * 1024;
/** Animated WebPs have one ANMF per frame; a million frames is hostile. */
const MAX_WEBP_CHUNKS = 1_000_000;

export interface WebpChunk {
  fourcc: string;
  /** Offset of the fourcc. */
  offset: number;
  /** Payload size (without the 8-byte header and the pad byte). */
  size: number;
}

/** RIFF chunks of a WebP (https://developers.google.com/speed/webp/docs/riff_container). */
export async function readWebpChunks(source: ByteSource, warnings: string[]): Promise<WebpChunk[]> {
  const chunks: WebpChunk[] = [];
  const riff = await source.read(4, 4);
  const declaredEnd = 8 + new DataView(riff.buffer, riff.byteOffset, 4).getUint32(0, true);
  let end = source.size;
  if (declaredEnd > source.size)
    warnings.push(`RIFF declares ${declaredEnd} bytes but the file has ${source.size}`);
  else end = declaredEnd;
  let offset = 12;
  const reader = new ReadAhead(source);
  while (offset + 8 <= end && chunks.length < MAX_WEBP_CHUNKS) {
    const head = await reader.read(offset, 8);
    const fourcc = String.fromCharCode(...head.subarray(0, 4));
    const size = new DataView(head.buffer, head.byteOffset + 4, 4).getUint32(0, true);
    if (offset + 8 + size > end) {
      warnings.push(
        `chunk ${JSON.stringify(fourcc)} at offset ${offset} declares ${size} bytes, past the end`,
      );
      break;
    }
    chunks.push({ fourcc, offset, size });
    offset += 8 + size + (size & 1);
  }
  return chunks;
}

function webpSize(fourcc: string, head: Uint8Array): { width?: number; height?: number } {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (fourcc === "VP8X" && head.length >= 10) {
    const uint24 = (at: number) => head[at]! | (head[at + 1]! << 8) | (head[at + 2]! << 16);
    return { width: 1 + uint24(4), height: 1 + uint24(7) };
  }
  if (fourcc === "VP8 " && head.length >= 10) {
    return { width: view.getUint16(6, true) & 0x3fff, height: view.getUint16(8, true) & 0x3fff };
  }
  if (fourcc === "VP8L" && head.length >= 5) {
    const bits = view.getUint32(1, true);
    return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff) };
  }
  return {};
}

/** EXIF and XMP text of a WebP; image data is never read. */
export async function readWebpMetadata(source: ByteSource): Promise<ImageMetadata & { chunks: WebpChunk[] }> {
  const texts: MetadataText[] = [];
  const warnings: string[] = [];
  const chunks = await readWebpChunks(source, warnings);
  let size: { width?: number; height?: number } = {};
  for (const chunk of chunks) {
    if (chunk.fourcc === "VP8X" || chunk.fourcc === "VP8 " || chunk.fourcc === "VP8L") {
      if (size.width === undefined)
        size = webpSize(chunk.fourcc, await source.read(chunk.offset + 8, Math.min(10, chunk.size)));
      continue;
    }
    if (chunk.fourcc !== "EXIF" && chunk.fourcc !== "XMP ") continue;
    if (chunk.size > MAX_WEBP_METADATA_BYTES) {
      warnings.push(`${chunk.fourcc} chunk of ${chunk.size} bytes is over the limit; skipped`);
      continue;
    }
    const body = await source.read(chunk.offset + 8, chunk.size);
    if (chunk.fourcc === "XMP ") {
      texts.push({ key: "xmp", text: decodeUtf8(body).text, origin: "WebP XMP" });
      continue;
    }
    // Older ComfyUI builds start the chunk with JPEG's `Exif\0\0`; the spec says the TIFF header comes first.
    const tiff = startsWithAscii(body, EXIF_APP1_HEADER) ? body.subarray(EXIF_APP1_HEADER.length) : body;
    texts.push(...readExifTexts(tiff, warnings, `EXIF chunk at offset ${chunk.offset}`).texts);
  }
  return { container: "webp", ...size, texts, warnings, chunks };
}
