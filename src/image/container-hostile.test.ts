import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { BufferByteSource } from "../io/byte-source.js";
import { readExifTexts } from "./exif-reader.js";
import { buildExif } from "./exif-writer.js";
import { makeExifSegment } from "./jpeg-writer.js";
import { textsByKey } from "./metadata-types.js";
import { MAX_PNG_CHUNKS } from "./png-reader.js";
import { MAX_INFLATED_TEXT_BYTES } from "./png-text.js";
import { makePngChunk, makePngTextChunk } from "./png-writer.js";
import { readImageMetadata } from "./read-image-metadata.js";
import { buildPng } from "./test-support/test-images.js";
import { makeWebpChunk } from "./webp-writer.js";

const read = (bytes: Uint8Array) => readImageMetadata(new BufferByteSource(bytes, "hostile"));
const ascii = (text: string) => Buffer.from(text, "latin1");

function jpegWith(...segments: Uint8Array[]): Uint8Array {
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    ...segments,
    Buffer.from([0xff, 0xda, 0, 2, 1, 2, 3, 0xff, 0xd9]),
  ]);
}

function webpWith(...chunks: Uint8Array[]): Uint8Array {
  const body = Buffer.concat([ascii("WEBP"), ...chunks]);
  const head = Buffer.alloc(8);
  head.write("RIFF", 0, "latin1");
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

describe("PNG readers on hostile input", () => {
  it("reads tEXt, zTXt and iTXt (plain and compressed) alike", async () => {
    const ztxt = makePngChunk("zTXt", Buffer.concat([ascii("z\0\0"), deflateSync(ascii("zipped"))]));
    const itxt = makePngChunk(
      "iTXt",
      Buffer.concat([ascii("i\0\x01\0en\0\0"), deflateSync(Buffer.from("テスト"))]),
    );
    const png = buildPng(1, 1, 0, [makePngTextChunk("t", "plain"), ztxt, itxt]);
    expect(textsByKey((await read(png)).texts)).toEqual({ t: "plain", z: "zipped", i: "テスト" });
  });

  it("stops at a chunk whose declared length runs past the end of the file", async () => {
    const png = buildPng(1, 1);
    const huge = Buffer.from(png);
    huge.writeUInt32BE(0x7fffffff, 33); // the IDAT length
    const meta = await read(huge);
    expect(meta.warnings[0]).toMatch(/chunk IDAT at offset 33 declares 2147483647 bytes but only \d+ remain/);
  });

  it("refuses a zTXt chunk that inflates past the limit (zip bomb) and keeps reading", async () => {
    const bomb = deflateSync(Buffer.alloc(MAX_INFLATED_TEXT_BYTES + 1));
    const png = buildPng(1, 1, 0, [
      makePngChunk("zTXt", Buffer.concat([ascii("bomb\0\0"), bomb])),
      makePngTextChunk("ok", "yes"),
    ]);
    const meta = await read(png);
    expect(textsByKey(meta.texts)).toEqual({ ok: "yes" });
    expect(meta.warnings).toEqual([expect.stringMatching(/zTXt chunk "bomb" inflates to more than/)]);
  });

  it("skips a text chunk without a keyword and a zTXt of invalid zlib data with warnings", async () => {
    const png = buildPng(1, 1, 0, [
      makePngChunk("tEXt", ascii("no keyword")),
      makePngChunk("zTXt", ascii("k\0\0garbage")),
    ]);
    const meta = await read(png);
    expect(meta.texts).toEqual([]);
    expect(meta.warnings).toEqual([
      expect.stringMatching(/no valid keyword/),
      expect.stringMatching(/invalid zlib data/),
    ]);
  });

  it("stops after the chunk limit on a file of a quarter million empty chunks, quickly", async () => {
    const png = buildPng(1, 1);
    const filler = makePngChunk("teSt", new Uint8Array(0));
    const hostile = Buffer.concat([
      png.subarray(0, 33),
      ...Array.from({ length: MAX_PNG_CHUNKS + 50_000 }, () => filler),
    ]);
    const started = performance.now();
    const meta = await read(hostile);
    expect(meta.warnings[0]).toMatch(new RegExp(`more than ${MAX_PNG_CHUNKS} chunks`));
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it("stops at a chunk type that is not four letters", async () => {
    const png = Buffer.concat([
      buildPng(1, 1).subarray(0, 33),
      Buffer.from([0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]),
    ]);
    expect((await read(png)).warnings).toContain("invalid chunk type at offset 33; stopped reading");
  });
});

describe("EXIF readers on hostile input", () => {
  it("detects UTF-16 byte order from the text, not from the TIFF header", () => {
    const be = Buffer.concat([ascii("UNICODE\0"), Buffer.from("Steps: 20", "utf16le").swap16()]);
    const le = Buffer.concat([ascii("UNICODE\0"), Buffer.from("Steps: 20", "utf16le")]);
    for (const payload of [be, le]) {
      const tiff = exifWithUserComment(payload, true);
      expect(readExifTexts(tiff, []).texts[0]!.text).toBe("Steps: 20");
    }
  });

  it("reads ASCII-prefixed UTF-8 and prefix-less values and strips trailing NULs", () => {
    const warnings: string[] = [];
    expect(
      readExifTexts(
        exifWithUserComment(Buffer.concat([ascii("ASCII\0\0\0"), Buffer.from("テスト\0")]), false),
        warnings,
      ).texts[0]!.text,
    ).toBe("テスト");
    expect(
      readExifTexts(exifWithUserComment(Buffer.from('{"a": 1}\0\0'), false), warnings).texts[0]!.text,
    ).toBe('{"a": 1}');
    expect(warnings).toEqual([]);
  });

  it("warns about unpaired surrogates and an odd UTF-16 length instead of failing", () => {
    const warnings: string[] = [];
    const payload = Buffer.concat([ascii("UNICODE\0"), Buffer.from([0xd8, 0x00, 0x00, 0x41, 0x00])]);
    const text = readExifTexts(exifWithUserComment(payload, false), warnings).texts[0]!.text;
    expect(text).toBe("\ufffdA");
    expect(warnings).toEqual([
      expect.stringMatching(/odd length/),
      expect.stringMatching(/unpaired surrogates/),
    ]);
  });

  it("stops at an IFD that points to itself", () => {
    const tiff = Buffer.from(buildExif({ userComment: "x" }));
    // point the ExifIFD pointer back at IFD0
    const count = tiff.readUInt16BE(8);
    for (let i = 0; i < count; i++)
      if (tiff.readUInt16BE(10 + i * 12) === 0x8769) tiff.writeUInt32BE(8, 10 + i * 12 + 8);
    const warnings: string[] = [];
    readExifTexts(tiff, warnings);
    expect(warnings).toEqual([expect.stringMatching(/referenced twice \(a loop\)/)]);
  });

  it("rejects an IFD claiming more entries than the block holds and values past its end", () => {
    const tiff = Buffer.from(buildExif({ make: "a long enough make" }));
    const warnings: string[] = [];
    const broken = Buffer.from(tiff);
    broken.writeUInt32BE(0xfffffff0, 10 + 8); // Make's value offset
    expect(readExifTexts(broken, warnings).texts).toEqual([]);
    tiff.writeUInt16BE(4000, 8);
    readExifTexts(tiff, warnings);
    expect(warnings).toEqual([
      expect.stringMatching(/Make declares 19 bytes at 4294967280/),
      expect.stringMatching(/4000 entries runs past the end/),
    ]);
  });
});

describe("JPEG and WebP readers on hostile input", () => {
  it("reads EXIF from a JPEG and stops at a segment that runs past the end", async () => {
    const jpeg = jpegWith(makeExifSegment(buildExif({ userComment: "hello" })));
    expect(textsByKey((await read(jpeg)).texts)).toEqual({ exif_user_comment: "hello" });
    const cut = jpeg.subarray(0, 30);
    const meta = await read(cut);
    expect(meta.warnings[0]).toMatch(/segment FFE1 at offset 2 declares \d+ bytes, past the end/);
  });

  it("reads EXIF from a WebP with and without the Exif header and stops at a chunk past the end", async () => {
    const tiff = buildExif({ model: "prompt:{}" });
    for (const payload of [tiff, Buffer.concat([ascii("Exif\0\0"), tiff])]) {
      expect(textsByKey((await read(webpWith(makeWebpChunk("EXIF", payload)))).texts)).toEqual({
        exif_model: "prompt:{}",
      });
    }
    const bad = Buffer.from(webpWith(makeWebpChunk("EXIF", tiff)));
    bad.writeUInt32LE(0x7ffffff0, 16);
    expect((await read(bad)).warnings[0]).toMatch(
      /chunk "EXIF" at offset 12 declares 2147483632 bytes, past the end/,
    );
  });
});

function exifWithUserComment(value: Uint8Array, littleEndian: boolean): Uint8Array {
  // II/MM header, IFD0 with one UserComment entry (type UNDEFINED), value after the IFD.
  const out = Buffer.alloc(8 + 2 + 12 + 4 + value.length);
  const u16 = (v: number, at: number) => (littleEndian ? out.writeUInt16LE(v, at) : out.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (littleEndian ? out.writeUInt32LE(v, at) : out.writeUInt32BE(v, at));
  out.write(littleEndian ? "II" : "MM", 0, "latin1");
  u16(42, 2);
  u32(8, 4);
  u16(1, 8);
  u16(0x9286, 10);
  u16(7, 12);
  u32(value.length, 14);
  u32(26, 18);
  out.set(value, 26);
  return out;
}
