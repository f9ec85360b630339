import { describe, expect, it } from "vitest";
import { BufferByteSource, FileByteSource } from "../io/byte-source.js";
import { readStealthPngInfo } from "./stealth-pnginfo.js";
import { fixtureImages } from "./test-support/fixture-images.js";
import { buildPng } from "./test-support/test-images.js";

const pngFixtures = fixtureImages().filter(
  (f) => f.expected.container === "png" && f.expected.problems.length === 0,
);

describe("readStealthPngInfo", () => {
  it.each(pngFixtures.map((f) => [f.stem, f] as const))(
    "finds exactly the hidden text the fixture lists in %s",
    async (_, fixture) => {
      const source = await FileByteSource.open(fixture.path);
      try {
        const found = await readStealthPngInfo(source);
        expect(found?.text).toBe(fixture.expected.stealth_pnginfo?.text);
      } finally {
        await source.close();
      }
    },
  );

  it("finds nothing in an image whose low bits carry no signature", async () => {
    expect(await readStealthPngInfo(new BufferByteSource(buildPng(8, 8, 0x55)))).toBeUndefined();
  });
});
