import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { LibraryStore } from "./library-store.js";
import { childrenOf, groupFiles, setVersionFields } from "./library-versions.js";
import { modelPage } from "./model-view.js";
import { openLibrary } from "./open-library.js";
import { listEntries } from "./query-library.js";
import { addToLibrary, rescanLibrary } from "./scan-library.js";
import { MERGE_FAMILY, writeInfotextPng, writeMergeFamily } from "./test-support/write-merge-family.js";

let dir = "";
useTempDirWithHashCache("gyoza-library-view-", (path) => (dir = path));

let models = "";
beforeAll(async () => {
  models = join(dir, "models");
  await writeMergeFamily(models);
}, 60_000);

function openStore(name: string): LibraryStore {
  return new LibraryStore(openLibrary(join(dir, `${name}.db`)));
}

function fileId(store: LibraryStore, name: string): number {
  const entry = listEntries(store).find((candidate) => candidate.name === name);
  if (!entry) throw new Error(`${name} is not in the library`);
  return entry.id;
}

describe("models and versions from gyoza's provenance", () => {
  it("makes a gyoza merge a version of the model its title names, with its recipe and both parents linked by hash", async () => {
    const store = openStore("provenance");
    await addToLibrary(store, [models], { cacheDir: false });
    const page = modelPage(store, "Silicon-29");
    expect(page.model).toMatchObject({ name: "Silicon-29", source: "provenance" });
    expect(page.versions).toHaveLength(1);
    const [version] = page.versions;
    expect(version!.name).toBe("silicon-29");
    expect(version!.files.map((file) => file.name)).toEqual([MERGE_FAMILY.child]);
    expect(version!.files[0]!.hashes?.SHA256).toMatch(/^[0-9A-F]{64}$/);
    expect(version!.baseModel).toBe("SD 1.5");
    expect(version!.sources.baseModel).toBe("detected");
    expect(version!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(version!.recipe).toMatchObject({ format: "gyoza" });
    expect(version!.recipe!.recipe).not.toBeNull();
    expect(version!.recipe!.yaml).toContain("weighted_sum");
    expect(version!.recipe!.steps.map((step) => step.method)).toEqual(["weighted_sum"]);
    expect(version!.parents.map((parent) => parent.local.map((file) => file.path))).toEqual([
      [join(models, MERGE_FAMILY.parentA)],
      [join(models, MERGE_FAMILY.parentB)],
    ]);
    expect(version!.parents[0]!.local[0]!.via).toBe("SHA256");
    expect(version!.parents[0]!.sha256).toMatch(/^[0-9A-F]{64}$/);
    // the page's data is plain JSON
    expect(JSON.parse(JSON.stringify(page))).toEqual(page);
    store.db.close();
  });

  it("finds everything made from a model, directly and through merges of merges", async () => {
    const store = openStore("parents");
    await addToLibrary(store, [models], { cacheDir: false });
    const names = (ids: number[]) => ids.map((id) => store.fileById(id)!.path.split("/").at(-1)).sort();
    expect(names(childrenOf(store, "Silicon-29"))).toEqual([MERGE_FAMILY.grandchild]);
    expect(names(childrenOf(store, join(models, MERGE_FAMILY.parentA)))).toEqual([
      MERGE_FAMILY.grandchild,
      MERGE_FAMILY.child,
    ]);
    const sha = store.hashesOf(fileId(store, MERGE_FAMILY.parentB))!.sha256;
    expect(names(childrenOf(store, sha.slice(0, 10)))).toEqual([MERGE_FAMILY.grandchild, MERGE_FAMILY.child]);
    expect(childrenOf(store, MERGE_FAMILY.grandchild)).toEqual([]);
    store.db.close();
  });

  it("keeps fields set by hand over what a later re-scan reads, and groups files by hand", async () => {
    const store = openStore("by-hand");
    await addToLibrary(store, [models], { cacheDir: false });
    setVersionFields(store, "Silicon-29", {
      clipSkip: 2,
      vae: "kl-f8-anime.safetensors",
      negativeEmbeddings: ["easynegative"],
      trainedWords: ["silicon style"],
      description: "# Silicon-29\n\nA **test** merge.",
      tags: ["anime", "merge"],
      license: "CreativeML OpenRAIL-M",
    });
    await rescanLibrary(store, { cacheDir: false });
    const usage = modelPage(store, "Silicon-29@silicon-29").versions[0]!.usage;
    expect(usage).toEqual({
      clipSkip: 2,
      vae: "kl-f8-anime.safetensors",
      negativeEmbeddings: ["easynegative"],
      trainedWords: ["silicon style"],
      description: "# Silicon-29\n\nA **test** merge.",
      tags: ["anime", "merge"],
      license: "CreativeML OpenRAIL-M",
      notes: null,
    });
    // group the two parents as versions of one model, by hand
    groupFiles(store, [join(models, MERGE_FAMILY.parentA)], { model: "Bases", version: "anime" });
    groupFiles(store, [join(models, MERGE_FAMILY.parentB)], { model: "bases", version: "photo" });
    setVersionFields(store, "Bases@anime", { createdAt: "2024-01-01T00:00:00Z" });
    setVersionFields(store, "Bases@photo", { createdAt: "2025-01-01T00:00:00Z" });
    const bases = modelPage(store, "Bases");
    expect(bases.model.source).toBe("user");
    expect(bases.versions.map((version) => version.name)).toEqual(["photo", "anime"]);
    setVersionFields(store, "Bases@photo", { name: "Photo v2" });
    expect(modelPage(store, "bases@photo v2").versions.map((version) => version.name)).toEqual(["Photo v2"]);
    setVersionFields(store, "Bases@photo v2", { name: null });
    // a grouped merge leaves its provenance-made version (and that model, now empty)
    groupFiles(store, [join(models, MERGE_FAMILY.grandchild)], { model: "Bases", version: "grand" });
    expect(() => modelPage(store, "Gyoza Grand")).toThrow(/no model/);
    const grand = modelPage(store, "Bases@grand").versions[0]!;
    expect(grand.recipe?.format).toBe("gyoza");
    expect(grand.parents[0]!.local[0]!.model).toBe("Silicon-29");
    await rescanLibrary(store, { cacheDir: false });
    expect(modelPage(store, "Bases").versions.map((version) => version.name)).toEqual([
      "grand",
      "photo",
      "anime",
    ]);
    store.db.close();
  });
});

describe("sample images", () => {
  it("links an image to the version whose file its Model hash, Lora hashes or hashes JSON name, with its generation data", async () => {
    const store = openStore("images");
    await addToLibrary(store, [models], { cacheDir: false });
    const child = store.hashesOf(fileId(store, MERGE_FAMILY.child))!;
    const parentB = store.hashesOf(fileId(store, MERGE_FAMILY.parentB))!;
    const images = join(dir, "images");
    await import("node:fs/promises").then(({ mkdir }) => mkdir(images, { recursive: true }));
    await writeInfotextPng(
      join(images, "by-autov2.png"),
      `a gyoza, <lora:photo:0.7>\nNegative prompt: lowres\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: ${child.autov2.toLowerCase()}, Model: silicon-29, Clip skip: 2, Lora hashes: "photo: ${parentB.autov3.toLowerCase()}", Version: v1.10.0`,
    );
    await writeInfotextPng(
      join(images, "by-sha256.png"),
      `a gyoza\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 99, Size: 512x512, Model: x, Hashes: {"model": "${child.sha256.toLowerCase()}"}, Version: v1.10.0`,
    );
    await writeInfotextPng(
      join(images, "elsewhere.png"),
      "a gyoza\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 7, Size: 512x512, Model hash: 6c015a2deb, Model: copycatNoob_v11, Version: v1.10.0",
    );
    const summary = await addToLibrary(store, [images], { cacheDir: false });
    expect(summary.images).toMatchObject({ files: 3, added: 3, withGeneration: 3, unreadable: 0 });
    const version = modelPage(store, "Silicon-29").versions[0]!;
    expect(version.images.map((image) => image.path.split("/").at(-1))).toEqual([
      "by-autov2.png",
      "by-sha256.png",
    ]);
    const first = version.images[0]!;
    expect(first.generation).toMatchObject({ seed: 1234, steps: 20, sampler: "DPM++ 2M", clipSkip: 2 });
    expect(first.generation?.negativePrompt).toBe("lowres");
    expect(first.resources.find((resource) => resource.kind === "checkpoint")!.local[0]).toMatchObject({
      path: join(models, MERGE_FAMILY.child),
      via: "AutoV2",
    });
    const lora = first.resources.find((resource) => resource.kind === "lora")!;
    expect(lora).toMatchObject({ name: "photo", weight: 0.7, hash: parentB.autov3 });
    expect(lora.local[0]).toMatchObject({ path: join(models, MERGE_FAMILY.parentB), via: "AutoV3" });
    // the image whose model is elsewhere is kept with the hash it names
    const kept = store.db
      .prepare<[], { model_hash: string; model_name: string; seed: string }>(
        "SELECT model_hash, model_name, seed FROM images WHERE path LIKE '%elsewhere.png'",
      )
      .get();
    expect(kept).toEqual({ model_hash: "6C015A2DEB", model_name: "copycatNoob_v11", seed: "7" });
    store.db.close();
  });
});
