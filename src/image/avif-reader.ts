import { GyozaError } from "../errors.js";
import type { ByteSource } from "../io/byte-source.js";
import { readExifTexts } from "./exif-reader.js";
import type { ImageMetadata, MetadataText } from "./metadata-types.js";
import { decodeUtf8 } from "./text-codec.js";

/** The `meta` box holds item tables only (no pixels): a few KB. More is not an image we should trust. */
const MAX_META_BOX_BYTES = 16 * 1024 * 1024;
/** EXIF/XMP items are metadata; larger ones are skipped. */
const MAX_ITEM_BYTES = 64 * 1024 * 1024;
/** Top-level boxes of a still image: ftyp, meta, mdat and a few more. */
const MAX_TOP_LEVEL_BOXES = 10_000;

interface Box {
  type: string;
  /** Offset of the payload within the buffer or file. */
  start: number;
  end: number;
}

function boxesIn(bytes: Uint8Array, from: number, to: number): Box[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boxes: Box[] = [];
  let at = from;
  while (at + 8 <= to) {
    let size = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    let header = 8;
    if (size === 1) {
      if (at + 16 > to) break;
      size = Number(view.getBigUint64(at + 8));
      header = 16;
    } else if (size === 0) size = to - at;
    if (size < header || at + size > to)
      throw new GyozaError("format", `box "${type}" at ${at} runs past its parent`);
    boxes.push({ type, start: at + header, end: at + size });
    at += size;
  }
  return boxes;
}

function uint(view: DataView, at: number, bytes: number): number {
  if (bytes === 0) return 0;
  if (bytes === 2) return view.getUint16(at);
  if (bytes === 4) return view.getUint32(at);
  if (bytes === 8) return Number(view.getBigUint64(at));
  throw new GyozaError("format", `unsupported ${bytes}-byte field in iloc`);
}

/** Item id → type (and MIME content type) from `iinf` (ISO/IEC 14496-12 §8.11.6). */
function itemInfos(meta: Uint8Array, iinf: Box): Map<number, { type: string; contentType?: string }> {
  const view = new DataView(meta.buffer, meta.byteOffset, meta.byteLength);
  const version = meta[iinf.start]!;
  const first = iinf.start + 4 + (version === 0 ? 2 : 4);
  const items = new Map<number, { type: string; contentType?: string }>();
  for (const infe of boxesIn(meta, first, iinf.end).filter((box) => box.type === "infe")) {
    const infeVersion = meta[infe.start]!;
    if (infeVersion < 2) continue;
    let at = infe.start + 4;
    const id = infeVersion === 2 ? view.getUint16(at) : view.getUint32(at);
    at += (infeVersion === 2 ? 2 : 4) + 2;
    const type = String.fromCharCode(...meta.subarray(at, at + 4));
    at += 4;
    const nameEnd = meta.indexOf(0, at);
    let contentType: string | undefined;
    if (type === "mime" && nameEnd >= 0 && nameEnd < infe.end) {
      const typeEnd = meta.indexOf(0, nameEnd + 1);
      contentType = decodeUtf8(
        meta.subarray(nameEnd + 1, typeEnd < 0 || typeEnd > infe.end ? infe.end : typeEnd),
      ).text;
    }
    items.set(id, { type, contentType });
  }
  return items;
}

/** Item id → file extents from `iloc` (§8.11.3); only items stored in the file (construction method 0). */
function itemLocations(meta: Uint8Array, iloc: Box): Map<number, { offset: number; length: number }[]> {
  const view = new DataView(meta.buffer, meta.byteOffset, meta.byteLength);
  const version = meta[iloc.start]!;
  let at = iloc.start + 4;
  const offsetSize = meta[at]! >> 4;
  const lengthSize = meta[at]! & 15;
  const baseOffsetSize = meta[at + 1]! >> 4;
  const indexSize = version >= 1 ? meta[at + 1]! & 15 : 0;
  at += 2;
  const count = version < 2 ? view.getUint16(at) : view.getUint32(at);
  at += version < 2 ? 2 : 4;
  const locations = new Map<number, { offset: number; length: number }[]>();
  for (let i = 0; i < count && at < iloc.end; i++) {
    const id = version < 2 ? view.getUint16(at) : view.getUint32(at);
    at += version < 2 ? 2 : 4;
    const method = version >= 1 ? view.getUint16(at) & 15 : 0;
    if (version >= 1) at += 2;
    at += 2; // data_reference_index
    const base = uint(view, at, baseOffsetSize);
    at += baseOffsetSize;
    const extentCount = view.getUint16(at);
    at += 2;
    const extents: { offset: number; length: number }[] = [];
    for (let e = 0; e < extentCount; e++) {
      at += indexSize;
      const offset = uint(view, at, offsetSize);
      at += offsetSize;
      const length = uint(view, at, lengthSize);
      at += lengthSize;
      extents.push({ offset: base + offset, length });
    }
    if (at > iloc.end) throw new GyozaError("format", "iloc box is cut short");
    if (method === 0) locations.set(id, extents);
  }
  return locations;
}

/** EXIF and XMP items of an AVIF/HEIF image (read only: the pixels and the item tables are left alone). */
export async function readAvifMetadata(source: ByteSource): Promise<ImageMetadata> {
  const texts: MetadataText[] = [];
  const warnings: string[] = [];
  let offset = 0;
  let metaBox: Uint8Array | undefined;
  for (let n = 0; offset + 8 <= source.size && n < MAX_TOP_LEVEL_BOXES; n++) {
    const head = await source.read(offset, Math.min(16, source.size - offset));
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    let size = view.getUint32(0);
    const type = String.fromCharCode(...head.subarray(4, 8));
    if (size === 1 && head.length >= 16) size = Number(view.getBigUint64(8));
    else if (size === 0) size = source.size - offset;
    if (size < 8 || offset + size > source.size) {
      warnings.push(`box "${type}" at offset ${offset} declares ${size} bytes, past the end`);
      break;
    }
    if (type === "meta") {
      if (size > MAX_META_BOX_BYTES)
        throw new GyozaError("limit", `meta box of ${size} bytes`, { file: source.name });
      metaBox = await source.read(offset, size);
      break;
    }
    offset += size;
  }
  if (!metaBox) return { container: "avif", texts, warnings: [...warnings, "no meta box"] };
  try {
    const children = boxesIn(metaBox, 12, metaBox.length); // 8-byte header + version/flags
    const iinf = children.find((box) => box.type === "iinf");
    const iloc = children.find((box) => box.type === "iloc");
    if (!iinf || !iloc) return { container: "avif", texts, warnings };
    const locations = itemLocations(metaBox, iloc);
    for (const [id, item] of itemInfos(metaBox, iinf)) {
      const isXmp = item.type === "mime" && item.contentType === "application/rdf+xml";
      if (item.type !== "Exif" && !isXmp) continue;
      const extents = locations.get(id) ?? [];
      const total = extents.reduce((sum, extent) => sum + extent.length, 0);
      if (total > MAX_ITEM_BYTES) {
        warnings.push(`item ${id} (${item.type}) of ${total} bytes is over the limit; skipped`);
        continue;
      }
      const body = Buffer.concat(await Promise.all(extents.map((e) => source.read(e.offset, e.length))));
      if (isXmp) texts.push({ key: "xmp", text: decodeUtf8(body).text, origin: "AVIF XMP item" });
      else if (body.length >= 4) {
        // ExifDataBlock: a 32-bit offset to the TIFF header (past an optional "Exif\0\0").
        const tiffStart = 4 + body.readUInt32BE(0);
        texts.push(...readExifTexts(body.subarray(tiffStart), warnings, `AVIF Exif item ${id}`).texts);
      }
    }
  } catch (error) {
    if (!(error instanceof GyozaError) && !(error instanceof RangeError)) throw error;
    warnings.push(`meta box: ${error.message}`);
  }
  return { container: "avif", texts, warnings };
}
