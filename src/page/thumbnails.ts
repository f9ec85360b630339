/** Thumbnails fit this box (CSS shows them at half, so they stay sharp on 2x screens). */
export const THUMBNAIL_SIZE_PX = 320;
/**
 * Images with more pixels than this are not decoded (a 16k × 16k PNG of a few KB would need 1 GiB
 * of memory; CWE-400). Sample images are rarely above 4k × 4k; the page says "no preview" instead.
 */
export const MAX_INPUT_PIXELS = 64 * 1024 * 1024;
/** WebP quality of thumbnails: small files, no visible loss at this size. */
const THUMBNAIL_QUALITY = 80;

export type ThumbnailResult =
  | { ok: true; bytes: Buffer; width: number; height: number; sourceWidth: number; sourceHeight: number }
  | { ok: false; problem: string };

/**
 * A WebP thumbnail of an image file through libvips (sharp): EXIF orientation applied, first frame
 * of an animation, never enlarged. The thumbnail carries no metadata (the original, copied beside
 * it, keeps all of it). Untrusted input: a file libvips cannot decode, or one over the pixel limit,
 * gives `ok: false` with the reason instead of throwing, so one bad image does not stop a page.
 */
export async function makeThumbnail(path: string): Promise<ThumbnailResult> {
  try {
    // loaded on first use: libvips is large, and every other gyoza command starts without it
    const { default: sharp } = await import("sharp");
    const image = sharp(path, { limitInputPixels: MAX_INPUT_PIXELS, failOn: "error", animated: false });
    const { width: sourceWidth, height: sourceHeight } = await image.metadata();
    const { data, info } = await image
      .rotate()
      .resize({
        width: THUMBNAIL_SIZE_PX,
        height: THUMBNAIL_SIZE_PX,
        fit: "inside",
        withoutEnlargement: true,
      })
      .webp({ quality: THUMBNAIL_QUALITY })
      .toBuffer({ resolveWithObject: true });
    return { ok: true, bytes: data, width: info.width, height: info.height, sourceWidth, sourceHeight };
  } catch (error) {
    return { ok: false, problem: describeSharpError(error) };
  }
}

function describeSharpError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) return `more than ${MAX_INPUT_PIXELS} pixels`;
  if (/unsupported image format/i.test(message)) return "not an image libvips can read";
  if (/ENOENT|no such file/i.test(message)) return "file not found";
  return message.split("\n")[0]!.slice(0, 200);
}
