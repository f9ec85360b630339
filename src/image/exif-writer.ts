import { encodeUtf8 } from "./text-codec.js";
import { encodeUserComment } from "./user-comment.js";

/** Text that goes into a fresh EXIF block. */
export interface ExifTextFields {
  /** A1111 infotext or any text: written as `UNICODE\0` + UTF-16BE in the Exif IFD, as A1111 does. */
  userComment?: string;
  /** ComfyUI's animated-WebP convention: `workflow:{json}`. */
  make?: string;
  /** ComfyUI's animated-WebP convention: `prompt:{json}`. */
  model?: string;
  imageDescription?: string;
  software?: string;
}

interface Entry {
  tag: number;
  type: number;
  count: number;
  value: Uint8Array;
}

const TYPE_ASCII = 2;
const TYPE_LONG = 4;
const TYPE_UNDEFINED = 7;
const EXIF_IFD_POINTER = 0x8769;

function ascii(tag: number, text: string): Entry {
  const bytes = encodeUtf8(`${text}\0`);
  return { tag, type: TYPE_ASCII, count: bytes.length, value: bytes };
}

/** A big-endian TIFF block (the layout piexif writes for A1111), starting at the `MM` mark. */
export function buildExif(fields: ExifTextFields): Uint8Array {
  const ifd0: Entry[] = [];
  if (fields.imageDescription !== undefined) ifd0.push(ascii(0x010e, fields.imageDescription));
  if (fields.make !== undefined) ifd0.push(ascii(0x010f, fields.make));
  if (fields.model !== undefined) ifd0.push(ascii(0x0110, fields.model));
  if (fields.software !== undefined) ifd0.push(ascii(0x0131, fields.software));
  const exifIfd: Entry[] = [];
  if (fields.userComment !== undefined) {
    const value = encodeUserComment(fields.userComment);
    exifIfd.push({ tag: 0x9286, type: TYPE_UNDEFINED, count: value.length, value });
  }
  if (exifIfd.length > 0)
    ifd0.push({ tag: EXIF_IFD_POINTER, type: TYPE_LONG, count: 1, value: new Uint8Array(4) });

  const ifdSize = (entries: Entry[]) => 2 + entries.length * 12 + 4;
  const dataSize = (entries: Entry[]) =>
    entries.reduce((sum, e) => sum + (e.value.length > 4 ? e.value.length + (e.value.length & 1) : 0), 0);
  const ifd0Offset = 8;
  const exifOffset = ifd0Offset + ifdSize(ifd0) + dataSize(ifd0);
  const total = exifOffset + (exifIfd.length > 0 ? ifdSize(exifIfd) + dataSize(exifIfd) : 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set([0x4d, 0x4d, 0, 42, 0, 0, 0, ifd0Offset]);
  const writeIfd = (entries: Entry[], at: number): void => {
    entries.sort((a, b) => a.tag - b.tag);
    view.setUint16(at, entries.length);
    let data = at + ifdSize(entries);
    entries.forEach((entry, i) => {
      const slot = at + 2 + i * 12;
      view.setUint16(slot, entry.tag);
      view.setUint16(slot + 2, entry.type);
      view.setUint32(slot + 4, entry.count);
      if (entry.tag === EXIF_IFD_POINTER) view.setUint32(slot + 8, exifOffset);
      else if (entry.value.length <= 4) out.set(entry.value, slot + 8);
      else {
        view.setUint32(slot + 8, data);
        out.set(entry.value, data);
        data += entry.value.length + (entry.value.length & 1);
      }
    });
    view.setUint32(at + 2 + entries.length * 12, 0); // no next IFD
  };
  writeIfd(ifd0, ifd0Offset);
  if (exifIfd.length > 0) writeIfd(exifIfd, exifOffset);
  return out;
}
