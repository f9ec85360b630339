import type { MetadataText } from "./metadata-types.js";
import { decodeUtf8 } from "./text-codec.js";
import { decodeUserComment, trimTrailingNuls } from "./user-comment.js";

/** Real IFDs hold a few dozen entries; thousands means garbage that would make us loop. */
const MAX_IFD_ENTRIES = 4096;

/** EXIF text tags worth reporting, keyed as the fixtures and the CLI name them. */
export const EXIF_TEXT_TAGS: ReadonlyMap<number, { key: string; name: string }> = new Map([
  [0x010d, { key: "exif_document_name", name: "DocumentName" }],
  [0x010e, { key: "exif_image_description", name: "ImageDescription" }],
  [0x010f, { key: "exif_make", name: "Make" }],
  [0x0110, { key: "exif_model", name: "Model" }],
  [0x0131, { key: "exif_software", name: "Software" }],
  [0x0132, { key: "exif_datetime", name: "DateTime" }],
  [0x013b, { key: "exif_artist", name: "Artist" }],
  [0x8298, { key: "exif_copyright", name: "Copyright" }],
  [0x9010, { key: "exif_offset_time", name: "OffsetTime" }],
  [0x9286, { key: "exif_user_comment", name: "UserComment" }],
  [0x9c9c, { key: "exif_xp_comment", name: "XPComment" }],
]);

const EXIF_IFD_POINTER = 0x8769;
const USER_COMMENT = 0x9286;
const XP_COMMENT = 0x9c9c;
const TYPE_BYTES: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
};

export interface ExifReadResult {
  texts: MetadataText[];
  littleEndian: boolean;
}

/** Reads the text tags of a TIFF/EXIF block (starting at the `II`/`MM` byte-order mark). Never throws. */
export function readExifTexts(tiff: Uint8Array, warnings: string[], where = "EXIF"): ExifReadResult {
  const texts: MetadataText[] = [];
  if (tiff.length < 8) {
    warnings.push(`${where}: block of ${tiff.length} bytes is too short for a TIFF header`);
    return { texts, littleEndian: false };
  }
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const order = String.fromCharCode(tiff[0]!, tiff[1]!);
  if (order !== "II" && order !== "MM") {
    warnings.push(`${where}: no TIFF byte-order mark`);
    return { texts, littleEndian: false };
  }
  const le = order === "II";
  if (view.getUint16(2, le) !== 42) warnings.push(`${where}: TIFF magic number is not 42`);
  const visited = new Set<number>();
  const ifdProblem = (offset: number, ifdName: string): string | undefined => {
    if (visited.has(offset)) return `IFD at ${offset} is referenced twice (a loop)`;
    if (offset + 2 > tiff.length) return `${ifdName} offset ${offset} is past the end`;
    const count = view.getUint16(offset, le);
    if (count > MAX_IFD_ENTRIES) return `${ifdName} claims ${count} entries`;
    if (offset + 2 + count * 12 > tiff.length)
      return `${ifdName} with ${count} entries runs past the end of the block`;
    return undefined;
  };
  const walk = (offset: number, ifdName: string): void => {
    const problem = ifdProblem(offset, ifdName);
    if (problem) {
      warnings.push(`${where}: ${problem}`);
      return;
    }
    visited.add(offset);
    const count = view.getUint16(offset, le);
    for (let i = 0; i < count; i++) {
      const entry = offset + 2 + i * 12;
      const tag = view.getUint16(entry, le);
      const type = view.getUint16(entry + 2, le);
      const valueCount = view.getUint32(entry + 4, le);
      if (tag === EXIF_IFD_POINTER) {
        walk(view.getUint32(entry + 8, le), "ExifIFD");
        continue;
      }
      const known = EXIF_TEXT_TAGS.get(tag);
      if (!known) continue;
      const length = valueCount * (TYPE_BYTES[type] ?? 1);
      const start = length <= 4 ? entry + 8 : view.getUint32(entry + 8, le);
      if (start + length > tiff.length) {
        warnings.push(
          `${where}: ${known.name} declares ${length} bytes at ${start}, past the end (${tiff.length})`,
        );
        continue;
      }
      const value = tiff.subarray(start, start + length);
      const origin = `EXIF ${ifdName} ${known.name}`;
      if (tag === USER_COMMENT) {
        const decoded = decodeUserComment(value, le);
        for (const warning of decoded.warnings) warnings.push(`${where}: ${warning}`);
        texts.push({ key: known.key, text: decoded.text, origin: `${origin} (${decoded.how})` });
      } else if (tag === XP_COMMENT) {
        texts.push({
          key: known.key,
          text: trimTrailingNuls(new TextDecoder("utf-16le").decode(value)),
          origin,
        });
      } else {
        const { text, valid } = decodeUtf8(value);
        if (!valid) warnings.push(`${where}: ${known.name} is not valid UTF-8`);
        texts.push({ key: known.key, text: trimTrailingNuls(text), origin });
      }
    }
  };
  walk(view.getUint32(4, le), "IFD0");
  return { texts, littleEndian: le };
}
