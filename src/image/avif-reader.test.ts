import { describe, expect, it } from "vitest";
import { BufferByteSource } from "../io/byte-source.js";
import { copyMetadata } from "./carry-metadata.js";
import { detectGeneration } from "./detect-generation.js";
import { buildExif } from "./exif-writer.js";
import { textsByKey } from "./metadata-types.js";
import { readImageMetadata } from "./read-image-metadata.js";
import { buildPng } from "./test-support/test-images.js";

function box(type: string, ...payload: Uint8Array[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, body]);
}

const fullBox = (type: string, version: number, ...payload: Uint8Array[]) =>
  box(type, Buffer.from([version, 0, 0, 0]), ...payload);

/** An AVIF-shaped file: ftyp, meta (iinf with one Exif item, iloc pointing into mdat), mdat. No pixels. */
function buildAvif(exif: Uint8Array): Buffer {
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

describe("AVIF metadata", () => {
  const infotext =
    "a bowl of gyoza\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512";

  it("reads the EXIF UserComment that A1111 writes into AVIF", async () => {
    const meta = await readImageMetadata(
      new BufferByteSource(buildAvif(buildExif({ userComment: infotext }))),
    );
    expect(meta.container).toBe("avif");
    expect(textsByKey(meta.texts)).toEqual({ exif_user_comment: infotext });
    expect(detectGeneration(textsByKey(meta.texts))).toMatchObject({ generator: "a1111", seed: 5 });
  });

  it("copies AVIF metadata onto a PNG but refuses AVIF as a target", async () => {
    const avif = { bytes: buildAvif(buildExif({ userComment: infotext })), name: "a.avif" };
    const png = { bytes: buildPng(1, 1), name: "b.png" };
    const result = await copyMetadata(avif, png);
    expect(result.carried).toEqual(["parameters"]);
    await expect(copyMetadata({ bytes: result.bytes, name: "c.png" }, avif)).rejects.toMatchObject({
      code: "usage",
    });
  });

  it("warns about a meta box whose item table runs past its end instead of throwing", async () => {
    const avif = buildAvif(buildExif({ userComment: "x" }));
    avif.writeUInt32BE(0xffff, avif.indexOf("iloc") - 4);
    const meta = await readImageMetadata(new BufferByteSource(avif));
    expect(meta.texts).toEqual([]);
    expect(meta.warnings.join("\n")).toMatch(/runs past its parent/);
  });
});
