import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GyozaError } from "../errors.js";
import { BufferByteSource, FileByteSource } from "../io/byte-source.js";
import { textsByKey } from "./metadata-types.js";
import { readImageMetadata } from "./read-image-metadata.js";
import { FIXTURE_IMAGE_DIR, fixtureImages } from "./test-support/fixture-images.js";

const fixtures = fixtureImages();
const readable = fixtures.filter(
  (fixture) =>
    fixture.expected.chunks !== undefined && !fixture.expected.problems.includes("zero-length file"),
);

describe("readImageMetadata on the fixture images", () => {
  it("finds the expectations of every image in the folder, of every generator and container", () => {
    const images = readdirSync(FIXTURE_IMAGE_DIR).filter((name) => !/\.(json|md)$/.test(name));
    expect(fixtures.map((fixture) => fixture.expected.file).sort()).toEqual(images.sort());
    const generators = new Set(fixtures.map((fixture) => fixture.expected.generator));
    for (const generator of [
      "a1111",
      "civitai",
      "comfyui",
      "fooocus",
      "invokeai",
      "novelai",
      "swarmui",
      "none",
    ])
      expect(generators).toContain(generator);
    const containers = new Set(fixtures.map((fixture) => fixture.expected.container));
    expect([...containers].sort()).toEqual(["jpeg", "png", "webp"]);
  });

  it.each(readable.map((fixture) => [fixture.stem, fixture] as const))(
    "yields the expected chunk texts of %s",
    async (_, fixture) => {
      const source = await FileByteSource.open(fixture.path);
      try {
        const metadata = await readImageMetadata(source);
        expect(textsByKey(metadata.texts)).toEqual(fixture.expected.chunks);
        expect(metadata.container).toBe(fixture.expected.container);
        expect([metadata.width, metadata.height]).toEqual([fixture.expected.width, fixture.expected.height]);
        // Damage listed by the independent reader shows up as warnings, and clean files have none.
        expect(metadata.warnings.length > 0).toBe(fixture.expected.problems.length > 0);
      } finally {
        await source.close();
      }
    },
  );

  it("rejects a zero-length file as not an image", async () => {
    const empty = fixtures.find((fixture) => fixture.expected.problems.includes("zero-length file"))!;
    const source = await FileByteSource.open(empty.path);
    await expect(readImageMetadata(source)).rejects.toMatchObject({ code: "format", message: /empty file/ });
    await source.close();
  });

  it("keeps the text of a chunk whose CRC is wrong and says so", async () => {
    const fixture = fixtures.find((f) => f.stem === "corrupt_derived_bad_crc_text_chunk_png")!;
    const metadata = await readImageMetadata(new BufferByteSource(readFileSync(fixture.path)));
    expect(metadata.warnings).toEqual([
      expect.stringMatching(/CRC mismatch in tEXt at offset 33 \(stored da506ad3, computed da506a2c\)/),
    ]);
    expect(textsByKey(metadata.texts).parameters).toBe(fixture.expected.chunks.parameters);
  });

  it("returns the complete chunks of a file cut inside a text chunk and names the cut", async () => {
    const fixture = fixtures.find((f) => f.stem === "corrupt_derived_truncated_in_text_chunk_png")!;
    const metadata = await readImageMetadata(new BufferByteSource(readFileSync(fixture.path)));
    expect(Object.keys(textsByKey(metadata.texts))).toEqual(["prompt"]);
    expect(metadata.warnings).toContain("chunk tEXt at offset 1058 declares 3344 bytes but only 1672 remain");
  });

  it("rejects bytes that are no image with a format error naming the file", async () => {
    const error = await readImageMetadata(
      new BufferByteSource(new TextEncoder().encode("hello world!"), "x.png"),
    ).catch((e) => e);
    expect(error).toBeInstanceOf(GyozaError);
    expect(error.describe()).toMatch(/^x\.png: not a PNG, JPEG, WebP or AVIF image/);
  });
});
