import { GyozaError } from "../errors.js";
import type { ByteSource } from "../io/byte-source.js";
import { readAvifMetadata } from "./avif-reader.js";
import { readJpegMetadata, startsWithAscii } from "./jpeg-reader.js";
import type { ImageContainer, ImageMetadata } from "./metadata-types.js";
import { PNG_SIGNATURE, readPngMetadata } from "./png-reader.js";
import { readWebpMetadata } from "./webp-reader.js";

const SNIFF_BYTES = 12;

/** Which container the bytes are, from their magic numbers (never from the file name). */
export function sniffContainer(head: Uint8Array): ImageContainer | undefined {
  if (head.length >= 8 && PNG_SIGNATURE.every((byte, i) => head[i] === byte)) return "png";
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "jpeg";
  if (startsWithAscii(head, "RIFF") && startsWithAscii(head.subarray(8), "WEBP")) return "webp";
  if (
    startsWithAscii(head.subarray(4), "ftyp") &&
    /^(avif|avis|heic|heix|mif1|msf1)$/.test(String.fromCharCode(...head.subarray(8, 12)))
  ) {
    return "avif";
  }
  return undefined;
}

/**
 * Reads every text an image carries (PNG text chunks and eXIf, JPEG EXIF/XMP/COM, WebP EXIF/XMP)
 * without decoding pixels. Damage inside the file becomes `warnings`; only a file that is not a
 * PNG, JPEG or WebP at all throws (a `format` error).
 */
export async function readImageMetadata(source: ByteSource): Promise<ImageMetadata> {
  const head = await source.read(0, Math.min(SNIFF_BYTES, source.size));
  const container = sniffContainer(head);
  if (container === "png") return readPngMetadata(source);
  if (container === "jpeg") return readJpegMetadata(source);
  if (container === "webp") return readWebpMetadata(source);
  if (container === "avif") return readAvifMetadata(source);
  throw new GyozaError(
    "format",
    source.size === 0
      ? "empty file, not an image"
      : "not a PNG, JPEG, WebP or AVIF image (unknown magic number)",
    { file: source.name },
  );
}
