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
