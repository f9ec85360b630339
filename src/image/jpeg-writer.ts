import { GyozaError } from "../errors.js";
import { EXIF_APP1_HEADER, isStandaloneMarker, startsWithAscii, XMP_APP1_HEADER } from "./jpeg-reader.js";
import { encodeUtf8 } from "./text-codec.js";

const APP0 = 0xe0;
const APP1 = 0xe1;
const APP13 = 0xed;
const COM = 0xfe;
const SOS = 0xda;
/** A JPEG segment's length field is 16 bits and counts itself. */
export const MAX_JPEG_SEGMENT_PAYLOAD_BYTES = 0xffff - 2;

export interface RawJpegSegment {
  marker: number;
  /** The whole segment, marker included. */
  bytes: Uint8Array;
}

/** Segments before the scan, and the rest of the file (scan data onward) untouched. */
export function splitJpeg(
  bytes: Uint8Array,
  name = "<jpeg>",
): { segments: RawJpegSegment[]; rest: Uint8Array } {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8)
    throw new GyozaError("format", "not a JPEG file", { file: name });
  const segments: RawJpegSegment[] = [];
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff)
      throw new GyozaError("format", `expected a marker at offset ${offset}`, { file: name });
    const marker = bytes[offset + 1]!;
    if (marker === 0xff) {
      offset++;
      continue;
    }
    if (marker === SOS || marker === 0xd9) return { segments, rest: bytes.subarray(offset) };
    if (isStandaloneMarker(marker)) {
      segments.push({ marker, bytes: bytes.subarray(offset, offset + 2) });
      offset += 2;
      continue;
    }
    const length = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
    if (length < 2 || offset + 2 + length > bytes.length) {
      throw new GyozaError("format", `segment at offset ${offset} runs past the end`, { file: name });
    }
    segments.push({ marker, bytes: bytes.subarray(offset, offset + 2 + length) });
    offset += 2 + length;
  }
  throw new GyozaError("format", "JPEG has no scan data (truncated)", { file: name });
}

/** EXIF and XMP (APP1), IPTC (APP13) and comments (COM): the segments that hold metadata, not pixels or colour. */
export function isJpegMetadataSegment(segment: RawJpegSegment): boolean {
  if (segment.marker === COM || segment.marker === APP13) return true;
  if (segment.marker !== APP1) return false;
  const body = segment.bytes.subarray(4);
  return (
    startsWithAscii(body, EXIF_APP1_HEADER) ||
    startsWithAscii(body, XMP_APP1_HEADER) ||
    startsWithAscii(body, "http://ns.adobe.com/xmp/extension/")
  );
}

export function makeJpegSegment(marker: number, payload: Uint8Array, what: string): Uint8Array {
  if (payload.length > MAX_JPEG_SEGMENT_PAYLOAD_BYTES) {
    throw new GyozaError(
      "limit",
      `${what} is ${payload.length} bytes; a JPEG segment holds at most ${MAX_JPEG_SEGMENT_PAYLOAD_BYTES}`,
      {
        fix: "store this metadata in a PNG or WebP instead",
      },
    );
  }
  const out = new Uint8Array(4 + payload.length);
  out[0] = 0xff;
  out[1] = marker;
  out[2] = (payload.length + 2) >> 8;
  out[3] = (payload.length + 2) & 0xff;
  out.set(payload, 4);
  return out;
}

export function makeExifSegment(tiff: Uint8Array): Uint8Array {
  return makeJpegSegment(APP1, Buffer.concat([encodeUtf8(EXIF_APP1_HEADER), tiff]), "EXIF block");
}

export function makeCommentSegment(text: string): Uint8Array {
  return makeJpegSegment(COM, encodeUtf8(text), "JPEG comment");
}

/** Drops the metadata segments and inserts `segments` after SOI and any JFIF APP0; scan data is copied as is. */
export function replaceJpegMetadata(
  jpeg: Uint8Array,
  segments: readonly Uint8Array[],
  name?: string,
): Uint8Array {
  const split = splitJpeg(jpeg, name);
  const kept = split.segments.filter((segment) => !isJpegMetadataSegment(segment));
  const leadingApp0 = kept.findIndex((segment) => segment.marker !== APP0);
  const at = leadingApp0 < 0 ? kept.length : leadingApp0;
  return Buffer.concat([
    jpeg.subarray(0, 2),
    ...kept.slice(0, at).map((segment) => segment.bytes),
    ...segments,
    ...kept.slice(at).map((segment) => segment.bytes),
    split.rest,
  ]);
}

export function jpegMetadataSegments(jpeg: Uint8Array, name?: string): Uint8Array[] {
  return splitJpeg(jpeg, name)
    .segments.filter(isJpegMetadataSegment)
    .map((segment) => segment.bytes);
}
