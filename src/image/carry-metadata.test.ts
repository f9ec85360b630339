import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { copyMetadata, type ImageBytes, readMetadataOf, stripMetadata } from "./carry-metadata.js";
import { detectGeneration } from "./detect-generation.js";
import { splitJpeg } from "./jpeg-writer.js";
import { textsByKey } from "./metadata-types.js";
import { makePngTextChunk, splitPng } from "./png-writer.js";
import { FIXTURE_IMAGE_DIR, fixtureImages } from "./test-support/fixture-images.js";
import { buildPng, simpleWebpFrom } from "./test-support/test-images.js";
import { splitWebp } from "./webp-writer.js";

function fixture(stem: string): ImageBytes {
  const found = fixtureImages().find((f) => f.stem === stem)!;
  return { bytes: readFileSync(`${FIXTURE_IMAGE_DIR}${found.expected.file}`), name: found.expected.file };
}

/** A digest of the bytes that make up the picture, which metadata writes must never touch. */
function pixelData(bytes: Uint8Array): string {
  const parts =
    bytes[0] === 0x89
      ? splitPng(bytes)
          .filter((c) => !["tEXt", "zTXt", "iTXt", "eXIf"].includes(c.type))
          .map((c) => c.bytes)
      : bytes[0] === 0xff
        ? [splitJpeg(bytes).rest]
        : splitWebp(bytes)
            .filter((c) => !["EXIF", "XMP ", "VP8X"].includes(c.fourcc))
            .map((c) => c.bytes);
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return `${parts.length} parts, sha256 ${hash.digest("hex")}`;
}

async function generationOf(image: ImageBytes) {
  const info = detectGeneration(textsByKey((await readMetadataOf(image)).texts));
  if (!info) return undefined;
  const { raw: _raw, ...rest } = info;
  return rest;
}

const reencodedPng = (): ImageBytes => ({ bytes: buildPng(3, 2), name: "resized.png" });
const reencodedJpeg = (): ImageBytes => fixture("none_enslo_gimp_jpg");
const reencodedWebp = (): ImageBytes => fixture("none_enslo_gimp_webp");

describe("copyMetadata", () => {
  /** Every undamaged fixture whose generation data sits in its texts (not only in its pixels). */
  const sources = fixtureImages()
    .filter(
      (f) =>
        f.expected.generator !== "none" &&
        f.expected.problems.length === 0 &&
        Object.keys(f.expected.chunks).length > 0,
    )
    .map((f) => f.stem);
  const targets = { png: reencodedPng, jpeg: reencodedJpeg, webp: reencodedWebp };
  // A Hugging Face Space's JSON `parameters` (corpus only) is recognised in a PNG text chunk alone, so
  // its copy into EXIF would not read back the same and copyMetadata refuses it.
  const readsBackOnlyFromPng = (stem: string) => stem.startsWith("hf-space_");
  const cases = sources.flatMap((stem) =>
    Object.keys(targets)
      .filter((to) => to === "png" || !readsBackOnlyFromPng(stem))
      .map((to) => [stem, to] as const),
  );

  it.each(cases)(
    "carries %s onto a re-encoded %s with identical parsed metadata and untouched pixels",
    async (stem, to) => {
      const source = fixture(stem);
      const target = targets[to as keyof typeof targets]();
      const result = await copyMetadata(source, target, { allowLoss: true });
      const written = { bytes: result.bytes, name: target.name };
      expect(await generationOf(written)).toEqual(await generationOf(source));
      expect(pixelData(result.bytes)).toEqual(pixelData(target.bytes));
    },
  );

  it("copies PNG text chunks byte for byte between PNGs", async () => {
    const source = fixture("a1111_sdparsers_ztxt_after_idat_png");
    const result = await copyMetadata(source, reencodedPng());
    expect(textsByKey((await readMetadataOf({ bytes: result.bytes, name: "x" })).texts)).toEqual(
      textsByKey((await readMetadataOf(source)).texts),
    );
    expect(result.carried).toContain("parameters");
  });

  it("writes A1111 infotext into a PNG as tEXt when Latin-1 and iTXt otherwise, like PIL", async () => {
    const ascii = await copyMetadata(fixture("a1111_sdparsers_cropped_jpg"), reencodedPng());
    expect(splitPng(ascii.bytes).map((c) => c.type)).toEqual(["IHDR", "tEXt", "IDAT", "IEND"]);
    const japanese = await copyMetadata(fixture("a1111_enslo_sd-webui_jpg"), reencodedPng());
    expect(splitPng(japanese.bytes).map((c) => c.type)).toEqual(["IHDR", "iTXt", "IDAT", "IEND"]);
  });

  it("refuses to drop EXIF fields a PNG cannot hold unless told to", async () => {
    const civitai = fixture("civitai_enslo_civitai_jpeg");
    await expect(copyMetadata(civitai, reencodedPng())).rejects.toMatchObject({
      code: "usage",
      message: expect.stringMatching(/cannot hold exif_software, exif_artist/),
    });
    const result = await copyMetadata(civitai, reencodedPng(), { allowLoss: true });
    expect(result.dropped).toEqual(["exif_software", "exif_artist"]);
  });

  it("turns a simple-format WebP into the extended format when it gains EXIF", async () => {
    const simple = { bytes: simpleWebpFrom(fixture("none_enslo_gimp_webp").bytes), name: "simple.webp" };
    const result = await copyMetadata(fixture("a1111_sdparsers_cropped_png"), simple);
    const chunks = splitWebp(result.bytes);
    expect(chunks.map((c) => c.fourcc)).toEqual(["VP8X", "VP8 ", "EXIF"]);
    const meta = await readMetadataOf({ bytes: result.bytes, name: "x" });
    expect([meta.width, meta.height]).toEqual([1024, 1024]);
    expect(chunks[0]!.payload[0]).toBe(0x08);
  });

  it("rejects a source that has no metadata", async () => {
    await expect(copyMetadata(reencodedPng(), reencodedPng())).rejects.toMatchObject({ code: "usage" });
  });

  it("rejects a truncated target instead of writing a damaged file", async () => {
    const truncated = fixture("corrupt_derived_truncated_in_text_chunk_png");
    await expect(copyMetadata(fixture("a1111_sdparsers_cropped_png"), truncated)).rejects.toMatchObject({
      code: "format",
    });
  });

  it("refuses a workflow too large for one JPEG segment with a limit error", async () => {
    const workflow = JSON.stringify({ nodes: [], pad: "x".repeat(70_000) });
    const big = { bytes: buildPng(1, 1, 0, [makePngTextChunk("workflow", workflow)]), name: "big.png" };
    await expect(copyMetadata(big, reencodedJpeg())).rejects.toMatchObject({ code: "limit" });
  });
});

describe("stripMetadata", () => {
  it.each(
    fixtureImages()
      .filter((f) => f.expected.problems.length === 0)
      .map((f) => [f.stem] as const),
  )("removes every text from %s and leaves its pixels byte-identical", async (stem) => {
    const image = fixture(stem);
    const result = await stripMetadata(image);
    expect((await readMetadataOf({ bytes: result.bytes, name: image.name })).texts).toEqual([]);
    expect(pixelData(result.bytes)).toEqual(pixelData(image.bytes));
  });
});
