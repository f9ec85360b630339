import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { renderDemoImage } from "../demo/demo-images.js";
import { readMetadataOf, textsByKey } from "../image/index.js";
import { makePngChunk } from "../image/png-writer.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { SAMPLE_INFOTEXT, samplePageData } from "./test-support/sample-page-data.js";
import { MAX_INPUT_PIXELS, THUMBNAIL_SIZE_PX } from "./thumbnails.js";
import { writeModelPage } from "./write-model-page.js";

let dir = "";
useTempDirWithHashCache("gyoza-page-", (path) => (dir = path), { each: true });

async function sampleImages(): Promise<{ v1: string; v2: string }> {
  await mkdir(join(dir, "src"), { recursive: true });
  const v2 = join(dir, "src", 'sample <one> & "two".png');
  await writeFile(
    v2,
    await renderDemoImage({ seed: 2, width: 512, height: 768, infotext: SAMPLE_INFOTEXT, label: "v2" }),
  );
  const v1 = join(dir, "src", "not-an-image.png");
  await writeFile(v1, "this is text, not a PNG");
  return { v1, v2 };
}

/** A PNG whose header claims 20000 × 20000 pixels over a few bytes of data (a decompression bomb's shape). */
function pngClaimingPixels(width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]),
    makePngChunk("IHDR", ihdr),
    makePngChunk("IDAT", deflateSync(new Uint8Array(64))),
    makePngChunk("IEND", new Uint8Array(0)),
  ]);
}

describe("writeModelPage", () => {
  it("copies each sample image byte for byte, so its generation data still reads back", async () => {
    const images = await sampleImages();
    const written = await writeModelPage(samplePageData(images), join(dir, "page"));
    const copy = written.images.find((image) => image.source === images.v2)!;
    expect(copy.original).toMatch(/^images\/\d{3}-sample_one_two_.png$/);
    const copied = await readFile(join(written.folder, copy.original!));
    expect(copied.equals(await readFile(images.v2))).toBe(true);
    const metadata = await readMetadataOf({ bytes: copied, name: copy.original! });
    expect(textsByKey(metadata.texts).parameters).toBe(SAMPLE_INFOTEXT);
    const html = await readFile(written.page, "utf8");
    expect(html).toContain(`src="${copy.thumbnail}"`);
  });

  it("makes a WebP thumbnail that fits the thumbnail box", async () => {
    const written = await writeModelPage(samplePageData(await sampleImages()), join(dir, "page"));
    const thumbnail = written.images.find((image) => image.thumbnail !== null)!.thumbnail!;
    const info = await sharp(join(written.folder, thumbnail)).metadata();
    expect(info.format).toBe("webp");
    expect(info.height).toBe(THUMBNAIL_SIZE_PX);
    expect(info.width).toBe(Math.round((512 / 768) * THUMBNAIL_SIZE_PX));
  });

  it("writes the page with 'no preview' when a sample image is not an image at all", async () => {
    const images = await sampleImages();
    const written = await writeModelPage(samplePageData(images), join(dir, "page"));
    const broken = written.images.find((image) => image.source === images.v1)!;
    expect(broken.thumbnail).toBeNull();
    expect(broken.problem).toBe("not an image libvips can read");
    expect(await readFile(written.page, "utf8")).toContain("no preview: not an image libvips can read");
  });

  it("does not decode an image whose header claims more pixels than the limit", async () => {
    const images = await sampleImages();
    await writeFile(images.v1, pngClaimingPixels(20_000, 20_000));
    const written = await writeModelPage(samplePageData(images), join(dir, "page"));
    expect(written.images.find((image) => image.source === images.v1)!.problem).toBe(
      `more than ${MAX_INPUT_PIXELS} pixels`,
    );
  });

  it("says 'file not found' for a sample image whose file has gone", async () => {
    const images = await sampleImages();
    const written = await writeModelPage(
      samplePageData({ ...images, v1: join(dir, "gone.png") }),
      join(dir, "page"),
    );
    expect(written.images.find((image) => image.source.endsWith("gone.png"))).toMatchObject({
      original: null,
      problem: "file not found",
    });
  });

  it("leaves nothing behind when an image cannot be copied", async () => {
    const images = await sampleImages();
    const folderAsImage = join(dir, "src", "a-folder.png");
    await mkdir(folderAsImage);
    await expect(
      writeModelPage(samplePageData({ ...images, v1: folderAsImage }), join(dir, "page")),
    ).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(["src"]);
  });

  it("refuses to write over an existing folder unless asked, then replaces it whole", async () => {
    const images = await sampleImages();
    const target = join(dir, "page");
    await mkdir(target);
    await writeFile(join(target, "old.txt"), "old");
    await expect(writeModelPage(samplePageData(images), target)).rejects.toThrow(/folder is not empty/);
    await writeModelPage(samplePageData(images), target, { replace: true });
    expect((await readdir(target)).sort()).toEqual(["images", "index.html", "thumbnails"]);
    expect((await readdir(dir)).sort()).toEqual(["page", "src"]);
  });
});
