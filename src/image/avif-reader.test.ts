import { describe, expect, it } from "vitest";
import { BufferByteSource } from "../io/byte-source.js";
import { copyMetadata } from "./carry-metadata.js";
import { detectGeneration } from "./detect-generation.js";
import { buildExif } from "./exif-writer.js";
import { textsByKey } from "./metadata-types.js";
import { readImageMetadata } from "./read-image-metadata.js";
import { buildAvif, buildPng } from "./test-support/test-images.js";

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
