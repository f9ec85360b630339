import { deflateSync } from "node:zlib";
import { makePngChunk } from "../png-writer.js";
import { makeWebpChunk, splitWebp } from "../webp-writer.js";

/** A tiny valid 8-bit RGB PNG with no metadata, as a re-encoder would write it (for tests). */
export function buildPng(
  width: number,
  height: number,
  fill = 0x80,
  extraChunks: Uint8Array[] = [],
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = new Uint8Array(height * (1 + width * 3)).fill(fill);
  for (let y = 0; y < height; y++) rows[y * (1 + width * 3)] = 0; // filter type None
  return Buffer.concat([
    Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]),
    makePngChunk("IHDR", ihdr),
    ...extraChunks,
    makePngChunk("IDAT", deflateSync(rows)),
    makePngChunk("IEND", new Uint8Array(0)),
  ]);
}

/** A simple-format WebP (no VP8X) holding the image chunk of `webp` (for tests). */
export function simpleWebpFrom(webp: Uint8Array): Uint8Array {
  const image = splitWebp(webp).find((chunk) => chunk.fourcc === "VP8 " || chunk.fourcc === "VP8L")!;
  const body = makeWebpChunk(image.fourcc, image.payload);
  const riff = new Uint8Array(12);
  riff.set([0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50]);
  new DataView(riff.buffer).setUint32(4, body.length + 4, true);
  return Buffer.concat([riff, body]);
}

/**
 * A tiny valid baseline JPEG as a re-encoder would write it (JFIF, one grey component, every 8x8 block
 * flat mid-grey), with `segments` (EXIF, COM, ...) after the JFIF header (for tests). The Huffman
 * tables hold one 1-bit code each, so a block is two zero bits: DC difference 0, then end of block.
 */
export function buildJpeg(width: number, height: number, segments: Uint8Array[] = []): Uint8Array {
  const segment = (marker: number, payload: number[]) => {
    const out = new Uint8Array(4 + payload.length);
    out.set([0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
    out.set(payload, 4);
    return out;
  };
  const oneCodeTable = (tableClass: number) => [tableClass << 4, 1, ...new Array(15).fill(0), 0x00];
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const scan = new Uint8Array(Math.ceil((2 * blocks) / 8));
  const usedBits = (2 * blocks) % 8;
  if (usedBits > 0) scan[scan.length - 1] = (1 << (8 - usedBits)) - 1; // pad the last byte with 1 bits
  return Buffer.concat([
    Uint8Array.from([0xff, 0xd8]),
    segment(0xe0, [...Buffer.from("JFIF\0", "latin1"), 1, 1, 0, 0, 1, 0, 1, 0, 0]),
    ...segments,
    segment(0xdb, [0, ...new Array(64).fill(1)]),
    segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]),
    segment(0xc4, [...oneCodeTable(0), ...oneCodeTable(1)]),
    segment(0xda, [1, 1, 0x00, 0, 63, 0]),
    scan,
    Uint8Array.from([0xff, 0xd9]),
  ]);
}

/**
 * A tiny valid simple-format lossless WebP (VP8L, no alpha) whose pixels are all black (for tests): no
 * transforms, no colour cache, and five one-symbol prefix codes, so each pixel takes zero bits.
 */
export function buildWebp(width: number, height: number): Uint8Array {
  const vp8l = new Uint8Array(8);
  vp8l[0] = 0x2f; // VP8L signature
  new DataView(vp8l.buffer).setUint32(1, ((width - 1) & 0x3fff) | (((height - 1) & 0x3fff) << 14), true);
  // LSB first: three 0 bits (no transform, no colour cache, no meta prefix codes), then five simple
  // codes `1 0 0 0` (simple, one symbol, 1-bit symbol, symbol 0).
  vp8l.set([0x88, 0x88, 0x08], 5);
  const chunk = makeWebpChunk("VP8L", vp8l);
  const riff = new Uint8Array(12);
  riff.set([0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50]);
  new DataView(riff.buffer).setUint32(4, chunk.length + 4, true);
  return Buffer.concat([riff, chunk]);
}

/** An ISO BMFF box (AVIF/HEIF): 32-bit size, four-character type, payload. */
function box(type: string, ...payload: Uint8Array[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, body]);
}

const fullBox = (type: string, version: number, ...payload: Uint8Array[]) =>
  box(type, Buffer.from([version, 0, 0, 0]), ...payload);

/** An AVIF-shaped file (for tests): ftyp, meta (iinf with one Exif item, iloc pointing into mdat), mdat. No pixels. */
export function buildAvif(exif: Uint8Array): Buffer {
  const block = Buffer.concat([Buffer.from([0, 0, 0, 6]), Buffer.from("Exif\0\0", "latin1"), exif]);
  const ftyp = box("ftyp", Buffer.from("avif\0\0\0\0avifmif1", "latin1"));
  const infe = fullBox("infe", 2, Buffer.from([0, 1, 0, 0]), Buffer.from("Exif", "latin1"), Buffer.from([0]));
  const iinf = fullBox("iinf", 0, Buffer.from([0, 1]), infe);
  const ilocFor = (offset: number) => {
    const entry = Buffer.alloc(2 + 2 + 2 + 4 + 4);
    entry.writeUInt16BE(1, 0); // item id
    entry.writeUInt16BE(0, 2); // data reference index
    entry.writeUInt16BE(1, 4); // extent count
    entry.writeUInt32BE(offset, 6);
    entry.writeUInt32BE(block.length, 10);
    return fullBox("iloc", 0, Buffer.from([0x44, 0x00, 0, 1]), entry);
  };
  const metaWith = (offset: number) =>
    fullBox("meta", 0, fullBox("hdlr", 0, Buffer.alloc(20)), iinf, ilocFor(offset));
  const mdatOffset = ftyp.length + metaWith(0).length + 8;
  return Buffer.concat([ftyp, metaWith(mdatOffset), box("mdat", block)]);
}
