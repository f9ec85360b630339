/** What the container readers return: decoded text entries, never pixels. */

/** `avif` (and HEIF) is read only. */
export type ImageContainer = "png" | "jpeg" | "webp" | "avif";

/** One piece of text found in an image, keyed the way tools name it. */
export interface MetadataText {
  /**
   * PNG keyword (`parameters`, `prompt`, `workflow`, `Comment`, ...) or, for EXIF, `exif_user_comment`,
   * `exif_make`, `exif_model`, `exif_image_description`, ...; `jpeg_comment` for a JPEG COM segment, `xmp`
   * for an XMP packet outside PNG.
   */
  readonly key: string;
  readonly text: string;
  /** Where it came from, for humans: `tEXt`, `iTXt`, `zTXt`, `EXIF ExifIFD UserComment (UNICODE, UTF-16BE)`. */
  readonly origin: string;
}

export interface ImageMetadata {
  readonly container: ImageContainer;
  /** Pixel size from the container header, when it says. */
  readonly width?: number;
  readonly height?: number;
  readonly texts: readonly MetadataText[];
  /** Faults that did not stop the reading: bad CRCs, truncation, undecodable text. */
  readonly warnings: readonly string[];
}

/** `key → text`, the first occurrence of a key winning (as PNG readers such as PIL do for `parameters`). */
export function textsByKey(texts: readonly MetadataText[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of texts) if (!(entry.key in out)) out[entry.key] = entry.text;
  return out;
}
