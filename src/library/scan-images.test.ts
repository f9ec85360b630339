import { spawn } from "node:child_process";
import { copyFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { LibraryStore } from "./library-store.js";
import { groupFiles } from "./library-versions.js";
import { modelPage } from "./model-view.js";
import { openLibrary } from "./open-library.js";
import { listEntries } from "./query-library.js";
import { addToLibrary, rescanLibrary } from "./scan-library.js";
import {
  copyFixtureImages,
  MERGE_FAMILY,
  writeInfotextPng,
  writeMergeFamily,
} from "./test-support/write-merge-family.js";
import { writeModelFolder } from "./test-support/write-model-folder.js";

let dir = "";
useTempDirWithHashCache("gyoza-library-images-", (path) => (dir = path));

let family = "";
beforeAll(async () => {
  family = join(dir, "family");
  await writeMergeFamily(family);
}, 60_000);

/** Real front-end images from test/fixtures/images: A1111 (PNG, JPEG, WebP), ComfyUI, Civitai, none. */
const FIXTURES = [
  "a1111_derived_easy-reforge_lora_hashes_png.png",
  "a1111_enslo_sd-webui_jpg.jpg",
  "a1111_enslo_sd-webui_webp.webp",
  "comfyui_comfyexamples_lora_multiple_png.png",
  "civitai_enslo_civitai_jpeg.jpg",
  "none_enslo_gimp_jpg.jpg",
];
const CORRUPT = [
  "corrupt_sdparsers_empty_file_png.png",
  "corrupt_derived_truncated_in_text_chunk_png.png",
  "corrupt_derived_bad_crc_text_chunk_png.png",
];

interface ImageRowSubset {
  path: string;
  unreadable_reason: string | null;
  generator: string | null;
  model_hash: string | null;
  model_name: string | null;
  seed: string | null;
}

function imageRows(store: LibraryStore): ImageRowSubset[] {
  return store.db
    .prepare<[], ImageRowSubset>(
      "SELECT path, unreadable_reason, generator, model_hash, model_name, seed FROM images ORDER BY path",
    )
    .all();
}

describe("sample images in the library", () => {
  it("reads real front-end images and keeps each with the model hash it names, even when that model is not here", async () => {
    const images = join(dir, "fixtures");
    await copyFixtureImages(images, FIXTURES);
    const store = new LibraryStore(openLibrary(join(dir, "fixtures.db")));
    const summary = await addToLibrary(store, [images], { cacheDir: false });
    expect(summary.images).toMatchObject({ files: FIXTURES.length, added: FIXTURES.length, unreadable: 0 });
    const rows = imageRows(store);
    const byName = (name: string) => rows.find((row) => row.path.endsWith(name))!;
    const expected = JSON.parse(
      await readFile(
        join(
          import.meta.dirname,
          "../../test/fixtures/images/a1111_derived_easy-reforge_lora_hashes_png.expected.json",
        ),
        "utf8",
      ),
    ) as { chunks: { parameters: string } };
    const modelHash = /Model hash: ([0-9a-f]+)/.exec(expected.chunks.parameters)![1]!;
    expect(byName(FIXTURES[0]!)).toMatchObject({
      generator: "a1111",
      model_hash: modelHash.toUpperCase(),
      model_name: "copycatNoob_v11",
      seed: "2582194946",
    });
    expect(byName("none_enslo_gimp_jpg.jpg")).toMatchObject({ generator: null, unreadable_reason: null });
    expect(byName("comfyui_comfyexamples_lora_multiple_png.png").generator).toBe("comfyui");
    // the LoRA the A1111 image names is recorded with its hash, for when that LoRA is added
    const loras = store.db
      .prepare<[], { name: string; hash: string | null }>(
        "SELECT name, hash FROM image_resources WHERE kind = 'lora' ORDER BY image_id, position",
      )
      .all();
    expect(loras).toContainEqual({ name: "NoobV065sHyperDmd", hash: "45B5BD0819CF" });
    store.db.close();
  });

  it("records an empty, truncated or mislabelled image as unreadable with the reason and goes on", async () => {
    const images = join(dir, "hostile");
    await copyFixtureImages(images, [...CORRUPT, FIXTURES[0]!]);
    await writeFile(join(images, "not-an-image.jpg"), "plain text with a .jpg name\n");
    await writeFile(join(images, "zero.webp"), new Uint8Array(0));
    const store = new LibraryStore(openLibrary(join(dir, "hostile.db")));
    const summary = await addToLibrary(store, [images], { cacheDir: false });
    expect(summary.images.files).toBe(CORRUPT.length + 3);
    const rows = imageRows(store);
    const reasonOf = (name: string) => rows.find((row) => row.path.endsWith(name))!.unreadable_reason;
    expect(reasonOf("not-an-image.jpg")).toMatch(/^format: .*not a PNG, JPEG, WebP or AVIF/);
    expect(reasonOf("zero.webp")).toMatch(/empty file/);
    expect(reasonOf("corrupt_sdparsers_empty_file_png.png")).toMatch(/empty file/);
    // a good image after the bad ones is still read
    expect(rows.find((row) => row.path.endsWith(FIXTURES[0]!))!.generator).toBe("a1111");
    expect(summary.images.unreadable).toBe(rows.filter((row) => row.unreadable_reason !== null).length);
    store.db.close();
  });

  it("re-scans images incrementally: unchanged ones are not read again, changed ones are, vanished ones are marked missing", async () => {
    const images = join(dir, "incremental");
    await mkdir(images, { recursive: true });
    await writeInfotextPng(
      join(images, "one.png"),
      "a\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 8x8",
    );
    await writeInfotextPng(
      join(images, "two.png"),
      "b\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 2, Size: 8x8",
    );
    const store = new LibraryStore(openLibrary(join(dir, "incremental.db")));
    await addToLibrary(store, [images], { cacheDir: false });
    const again = await rescanLibrary(store, { cacheDir: false });
    expect(again.images).toMatchObject({ files: 2, unchanged: 2, added: 0, changed: 0 });
    await writeInfotextPng(
      join(images, "one.png"),
      "a\nSteps: 30, Sampler: Euler a, CFG scale: 5, Seed: 11, Size: 8x8",
    );
    await rm(join(images, "two.png"));
    const changed = await rescanLibrary(store, { cacheDir: false });
    expect(changed.images).toMatchObject({ files: 1, changed: 1, missing: 1 });
    expect(
      store.db.prepare("SELECT seed, missing FROM images ORDER BY path").all() as {
        seed: string;
        missing: number;
      }[],
    ).toEqual([
      { seed: "11", missing: 0 },
      { seed: "2", missing: 1 },
    ]);
    store.db.close();
  });

  it("links an image scanned before its model once the model is added", async () => {
    const store = new LibraryStore(openLibrary(join(dir, "later.db")));
    const first = new LibraryStore(openLibrary(join(dir, "hash-source.db")));
    await addToLibrary(first, [join(family, MERGE_FAMILY.child)], { cacheDir: false });
    const autov2 = first.hashesOf(listEntries(first)[0]!.id)!.autov2;
    first.db.close();
    const images = join(dir, "later");
    await mkdir(images, { recursive: true });
    await writeInfotextPng(
      join(images, "early.png"),
      `x\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 5, Size: 8x8, Model hash: ${autov2.toLowerCase()}`,
    );
    await addToLibrary(store, [images], { cacheDir: false });
    await addToLibrary(store, [family], { cacheDir: false });
    expect(modelPage(store, "Silicon-29").versions[0]!.images.map((image) => image.path)).toEqual([
      join(images, "early.png"),
    ]);
    store.db.close();
  });

  it("links a ComfyUI image, which records no hashes, to the library file its loader names", async () => {
    const folder = join(dir, "comfy");
    await copyFixtureImages(folder, ["comfyui_comfyexamples_lora_multiple_png.png"]);
    await copyFile(join(family, MERGE_FAMILY.parentA), join(folder, "v1-5-pruned-emaonly.safetensors"));
    const store = new LibraryStore(openLibrary(join(dir, "comfy.db")));
    await addToLibrary(store, [folder], { cacheDir: false });
    groupFiles(store, [join(folder, "v1-5-pruned-emaonly.safetensors")], {
      model: "SD 1.5",
      version: "emaonly",
    });
    const [image] = modelPage(store, "SD 1.5").versions[0]!.images;
    expect(image!.generation?.generator).toBe("comfyui");
    const checkpoint = image!.resources.find((resource) => resource.kind === "checkpoint")!;
    expect(checkpoint).toMatchObject({ name: "v1-5-pruned-emaonly.ckpt", hash: null });
    expect(checkpoint.local).toEqual([
      expect.objectContaining({ path: join(folder, "v1-5-pruned-emaonly.safetensors"), via: "file name" }),
    ]);
    store.db.close();
  });

  it("an interrupted scan leaves the library consistent, and the next scan finishes the job", async () => {
    const images = join(dir, "interrupted");
    await copyFixtureImages(images, FIXTURES);
    const store = new LibraryStore(openLibrary(join(dir, "interrupted.db")));
    const controller = new AbortController();
    let advanced = 0;
    await expect(
      addToLibrary(store, [images], {
        cacheDir: false,
        signal: controller.signal,
        onProgress: (event) => {
          if (event.type === "advance" && ++advanced === 2) controller.abort();
        },
      }),
    ).rejects.toThrow();
    expect(store.db.pragma("integrity_check", { simple: true })).toBe("ok");
    const written = imageRows(store).length;
    expect(written).toBe(2);
    // every written image has its resources; none half-written
    expect(
      store.db
        .prepare("SELECT count(*) AS n FROM image_resources WHERE image_id NOT IN (SELECT id FROM images)")
        .get(),
    ).toEqual({ n: 0 });
    await addToLibrary(store, [images], { cacheDir: false });
    expect(imageRows(store)).toHaveLength(FIXTURES.length);
    store.db.close();
  });

  it("two processes adding different folders to one library at once leave both sets, and an intact database", async () => {
    const models = join(dir, "concurrent-models");
    await writeModelFolder(models);
    const images = join(dir, "concurrent-images");
    await copyFixtureImages(images, FIXTURES);
    const library = join(dir, "concurrent.db");
    const cli = new URL("../cli/main.ts", import.meta.url).pathname;
    const add = (...folders: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolveRun) => {
        const child = spawn(
          process.execPath,
          [
            "--import",
            "tsx",
            cli,
            "library",
            "add",
            ...folders,
            "--library",
            library,
            "--no-hash-cache",
            "--json",
          ],
          { env: process.env },
        );
        let stderr = "";
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (code) => resolveRun({ code, stderr }));
      });
    const results = await Promise.all([add(models), add(family, images), add(family)]);
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    const store = new LibraryStore(openLibrary(library));
    expect(store.db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(store.db.pragma("foreign_key_check")).toEqual([]);
    const paths = listEntries(store).map((entry) => entry.path);
    expect(paths.filter((path) => path.startsWith(`${models}/`))).toHaveLength(6);
    expect(paths.filter((path) => path.startsWith(`${family}/`))).toHaveLength(4);
    expect(imageRows(store).filter((row) => row.path.startsWith(`${images}/`))).toHaveLength(FIXTURES.length);
    // the model folder's preview is an image too (4 bytes: unreadable)
    expect(imageRows(store).filter((row) => row.path.startsWith(`${models}/`))).toHaveLength(1);
    // one provenance-made version per merge, however many processes met it
    expect(modelPage(store, "Silicon-29").versions).toHaveLength(1);
    expect(modelPage(store, "Gyoza Grand").versions).toHaveLength(1);
    expect((await stat(library)).size).toBeGreaterThan(0);
    store.db.close();
  }, 120_000);
});
