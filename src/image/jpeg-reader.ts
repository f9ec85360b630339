import type { ByteSource } from "../io/byte-source.js";
import { readExifTexts } from "./exif-reader.js";
import type { ImageMetadata, MetadataText } from "./metadata-types.js";
import { ReadAhead } from "./read-ahead.js";
import { decodeUtf8 } from "./text-codec.js";

/** A JPEG before its scan data has a few dozen segments; more means we are reading garbage. */
const MAX_JPEG_SEGMENTS = 10_000;

export const EXIF_APP1_HEADER = "Exif\0\0";
export const XMP_APP1_HEADER = "http://ns.adobe.com/xap/1.0/\0";

export interface JpegSegment {
  marker: number;
  /** Offset of the 0xFF of the marker. */
  offset: number;
  /** Whole segment size including marker and length field. */
  size: number;
}

export function startsWithAscii(bytes: Uint8Array, text: string): boolean {
  if (bytes.length < text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[i] !== text.charCodeAt(i)) return false;
  return true;
}

export function isStandaloneMarker(marker: number): boolean {
  return marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7);
}

/** Segments from SOI up to (not including) the scan data; metadata always sits there. */
export async function readJpegSegments(source: ByteSource, warnings: string[]): Promise<JpegSegment[]> {
  const segments: JpegSegment[] = [];
  let offset = 2;
  const reader = new ReadAhead(source);
  while (offset + 2 <= source.size && segments.length < MAX_JPEG_SEGMENTS) {
    const head = await reader.read(offset, Math.min(4, source.size - offset));
    if (head[0] !== 0xff) {
      warnings.push(`expected a marker at offset ${offset}; stopped reading`);
      return segments;
    }
    const marker = head[1]!;
    if (marker === 0xff) {
      offset++; // fill byte
      continue;
    }
    if (isStandaloneMarker(marker)) {
      segments.push({ marker, offset, size: 2 });
      offset += 2;
      continue;
    }
    if (marker === 0xd9) return segments;
    if (head.length < 4) break;
    const length = (head[2]! << 8) | head[3]!;
    if (length < 2 || offset + 2 + length > source.size) {
      warnings.push(
        `segment FF${marker.toString(16).toUpperCase()} at offset ${offset} declares ${length} bytes, past the end`,
      );
      return segments;
    }
    segments.push({ marker, offset, size: 2 + length });
    if (marker === 0xda) return segments;
    offset += 2 + length;
  }
  if (segments.length >= MAX_JPEG_SEGMENTS) warnings.push(`more than ${MAX_JPEG_SEGMENTS} segments; stopped`);
  else warnings.push("no start-of-scan segment (the file is truncated)");
  return segments;
}

function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** EXIF (APP1), XMP (APP1) and COM text of a JPEG, reading only the segments before the scan. */
export async function readJpegMetadata(
  source: ByteSource,
): Promise<ImageMetadata & { segments: JpegSegment[] }> {
  const texts: MetadataText[] = [];
  const warnings: string[] = [];
  const segments = await readJpegSegments(source, warnings);
  let width: number | undefined;
  let height: number | undefined;
  for (const segment of segments) {
    if (segment.size <= 4) continue;
    const isText = segment.marker === 0xe1 || segment.marker === 0xfe;
    if (!isText && !isStartOfFrame(segment.marker)) continue;
    const body = await source.read(segment.offset + 4, segment.size - 4);
    if (isStartOfFrame(segment.marker) && body.length >= 5) {
      height = (body[1]! << 8) | body[2]!;
      width = (body[3]! << 8) | body[4]!;
    } else if (segment.marker === 0xfe) {
      const { text, valid } = decodeUtf8(body);
      if (!valid) warnings.push(`COM segment at offset ${segment.offset} is not valid UTF-8`);
      texts.push({ key: "jpeg_comment", text, origin: "JPEG COM" });
    } else if (startsWithAscii(body, EXIF_APP1_HEADER)) {
      const where = `EXIF (APP1 at offset ${segment.offset})`;
      texts.push(...readExifTexts(body.subarray(EXIF_APP1_HEADER.length), warnings, where).texts);
    } else if (startsWithAscii(body, XMP_APP1_HEADER)) {
      texts.push({
        key: "xmp",
        text: decodeUtf8(body.subarray(XMP_APP1_HEADER.length)).text,
        origin: "JPEG XMP",
      });
    }
  }
  return { container: "jpeg", width, height, texts, warnings, segments };
}
