import { describe, expect, it } from "vitest";
import { copyMetadata, type ImageBytes, readMetadataOf } from "./carry-metadata.js";
import { checkNameFitsContainer, containerOfName } from "./container-extensions.js";
import { detectGeneration } from "./detect-generation.js";
import { buildExif } from "./exif-writer.js";
import { makeExifSegment } from "./jpeg-writer.js";
import { type ImageContainer, textsByKey } from "./metadata-types.js";
import { makePngTextChunk } from "./png-writer.js";
import { sniffContainer } from "./read-image-metadata.js";
import { buildAvif, buildJpeg, buildPng, buildWebp } from "./test-support/test-images.js";
import { replaceWebpMetadata } from "./webp-writer.js";

const infotext =
  "gyoza on a plate\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 8x8";
const exif = () => buildExif({ userComment: infotext });

/** A source with A1111 infotext in each container copy-meta reads. */
const sources: Record<ImageContainer, () => ImageBytes> = {
  png: () => ({ bytes: buildPng(8, 8, 0x80, [makePngTextChunk("parameters", infotext)]), name: "src.png" }),
  jpeg: () => ({ bytes: buildJpeg(8, 8, [makeExifSegment(exif())]), name: "src.jpg" }),
  webp: () => ({
    bytes: replaceWebpMetadata(buildWebp(8, 8), { exif: exif(), xmp: null }, "src.webp"),
    name: "src.webp",
  }),
  avif: () => ({ bytes: buildAvif(exif()), name: "src.avif" }),
};

/** A re-encoded copy without metadata in each container copy-meta writes (AVIF is read only). */
const targets: Record<Exclude<ImageContainer, "avif">, () => ImageBytes> = {
  png: () => ({ bytes: buildPng(8, 8), name: "resized.png" }),
  jpeg: () => ({ bytes: buildJpeg(8, 8), name: "resized.jpg" }),
  webp: () => ({ bytes: buildWebp(8, 8), name: "resized.webp" }),
};

const outputNames = [
  "out.png",
  "out.jpg",
  "out.jpeg",
  "OUT.JPG",
  "out.jfif",
  "out.webp",
  "out.avif",
  "out",
  "out.txt",
];

describe("containerOfName", () => {
  it.each([
    ["a.png", "png"],
    ["a.JPG", "jpeg"],
    ["a.jpeg", "jpeg"],
    ["dir.v2/a.webp", "webp"],
    ["a.avif", "avif"],
    ["a.gif", undefined],
    ["a", undefined],
    ["dir.png/a", undefined],
  ])("reads %s as %s", (name, container) => {
    expect(containerOfName(name)).toBe(container);
  });
});

describe("checkNameFitsContainer", () => {
  it("refuses PNG bytes under a .jpg name, naming both containers and a name that fits", () => {
    expect(() => checkNameFitsContainer("shots/x.jpg", "png", "the target resized.png")).toThrow(
      expect.objectContaining({
        code: "usage",
        file: "shots/x.jpg",
        message:
          "the output would be a PNG image (the container of the target resized.png, whose pixels are kept as they are) but its name ends in .jpg (a JPEG name)",
        fix: "name the output shots/x.png (.png), or give a JPEG image as the target",
      }),
    );
  });

  it("refuses a name without an image extension", () => {
    expect(() => checkNameFitsContainer("out", "webp", "the target a.webp")).toThrow(
      /but its name has no extension/,
    );
    expect(() => checkNameFitsContainer("out.txt", "jpeg", "the target a.jpg")).toThrow(
      /ends in \.txt, which is not a JPEG extension/,
    );
  });
});

describe("copyMetadata's output name", () => {
  const cases = Object.keys(sources).flatMap((from) => Object.keys(targets).map((to) => [from, to] as const));

  it.each(cases)(
    "carries metadata from %s onto %s under every name of the target's container and refuses every other name",
    async (from, to) => {
      const source = sources[from as ImageContainer]();
      const target = targets[to as keyof typeof targets]();
      for (const outputName of outputNames) {
        const copying = copyMetadata(source, target, { outputName });
        if (containerOfName(outputName) !== to) {
          await expect(copying, outputName).rejects.toMatchObject({
            code: "usage",
            file: outputName,
            message: expect.stringContaining(`would be a ${to.toUpperCase()} image`),
          });
          continue;
        }
        const result = await copying;
        expect(sniffContainer(result.bytes.subarray(0, 12)), outputName).toBe(to);
        const written = textsByKey((await readMetadataOf({ bytes: result.bytes, name: outputName })).texts);
        expect(detectGeneration(written), outputName).toMatchObject({ prompt: "gyoza on a plate", seed: 42 });
      }
    },
  );

  it("does not look at the output name when none is given (the target is rewritten in place)", async () => {
    const target = { bytes: buildPng(8, 8), name: "misnamed.jpg" };
    const result = await copyMetadata(sources.png(), target);
    expect(sniffContainer(result.bytes.subarray(0, 12))).toBe("png");
  });
});
