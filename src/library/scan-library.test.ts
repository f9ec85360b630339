import { spawn } from "node:child_process";
import { copyFile, mkdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { LibraryStore } from "./library-store.js";
import { openLibrary } from "./open-library.js";
import { listEntries } from "./query-library.js";
import { addToLibrary, rescanLibrary } from "./scan-library.js";
import { MODEL_FOLDER_FILES as FILES, writeModelFolder } from "./test-support/write-model-folder.js";

let dir = "";
useTempDirWithHashCache("gyoza-library-scan-", (path) => (dir = path), { each: true });

function openStore(): LibraryStore {
  return new LibraryStore(openLibrary(join(dir, "library.db")));
}

function entryNamed(store: LibraryStore, name: string) {
  const entry = listEntries(store).find((candidate) => candidate.name === name);
  if (!entry) throw new Error(`${name} is not in the library`);
  return entry;
}

describe("library scans", () => {
  it("records each model file with its kind, Civitai facts and six hashes, and skips other files", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const store = openStore();
    const summary = await addToLibrary(store, [models], { cacheDir: false });
    expect(summary).toMatchObject({ files: 6, added: 6, hashed: 6, unreadable: 2, missing: 0, moved: 0 });
    const checkpoint = entryNamed(store, FILES.checkpoint);
    expect(checkpoint).toMatchObject({
      kind: "checkpoint",
      family: "sd1",
      bakedVae: true,
      type: "Model",
      metadata: { fp: "fp16", size: "pruned", format: "SafeTensor" },
    });
    expect(checkpoint.components).toEqual(expect.arrayContaining(["unet", "text_encoder", "vae"]));
    expect(checkpoint.hashes?.SHA256).toMatch(/^[0-9A-F]{64}$/);
    expect(checkpoint.hashes?.AutoV2).toBe(checkpoint.hashes?.SHA256.slice(0, 10));
    expect(checkpoint.hashes?.AutoV3).toMatch(/^[0-9A-F]{12}$/);
    expect(checkpoint.hashes?.BLAKE3).toMatch(/^[0-9A-F]{64}$/);
    expect(checkpoint.hashes?.CRC32).toMatch(/^[0-9A-F]{8}$/);
    expect(entryNamed(store, FILES.sdxlCkpt)).toMatchObject({
      kind: "checkpoint",
      family: "sdxl",
      metadata: { fp: "fp32", size: "full", format: "PickleTensor" },
    });
    expect(entryNamed(store, FILES.vae)).toMatchObject({ kind: "vae", type: "VAE", bakedVae: null });
    expect(entryNamed(store, FILES.lora)).toMatchObject({ kind: "lora", type: "LORA" });
    expect(listEntries(store).map((entry) => entry.name)).not.toContain("notes.txt");
    store.db.close();
  });

  it("records a truncated or hostile file as unreadable with the reason, hashes it, and goes on", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    const truncated = entryNamed(store, FILES.truncated);
    expect(truncated.kind).toBe("unreadable");
    expect(truncated.unreadableReason).toMatch(/^format: .*header claims \d+ bytes/);
    expect(truncated.hashes?.SHA256).toMatch(/^[0-9A-F]{64}$/);
    const hostile = entryNamed(store, FILES.hostile);
    expect(hostile.kind).toBe("unreadable");
    expect(hostile.unreadableReason).toMatch(/^(format|limit): /);
    store.db.close();
  });

  it("reads Civitai Helper, Stability Matrix, ComfyUI-Lora-Manager and A1111 sidecars with their source, and notes a preview", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    const facts = (name: string) =>
      Object.fromEntries(
        entryNamed(store, name).sidecars.map((fact) => [`${fact.source}:${fact.fact}`, fact.value]),
      );
    expect(facts(FILES.checkpoint)).toEqual({
      "civitai-helper:civitaiModelId": 56,
      "civitai-helper:civitaiVersionId": 1234,
      "civitai-helper:modelName": "GyozaMix",
      "civitai-helper:versionName": "v1.0",
      "civitai-helper:modelType": "Checkpoint",
      "civitai-helper:baseModel": "SD 1.5",
      "civitai-helper:trainedWords": ["gyoza style"],
      "civitai-helper:tags": ["anime", "Merge"],
      "civitai-helper:description": "<p>first version</p>",
      "preview:preview": join(models, "gyozamix-v1.preview.png"),
    });
    expect(facts(FILES.sdxlCkpt)).toMatchObject({
      "stability-matrix:civitaiModelId": 101,
      "stability-matrix:civitaiVersionId": 202,
      "stability-matrix:baseModel": "SDXL 1.0",
      "stability-matrix:tags": ["base model"],
    });
    expect(facts(FILES.vae)).toEqual({
      "a1111:description": "an anime VAE",
      "a1111:sdVersion": "SD1",
      "a1111:negativeText": "lowres",
    });
    expect(facts(FILES.lora)["civitai-helper:error"]).toMatch(/^not JSON/);
    expect(facts(FILES.lora)).toMatchObject({
      "lora-manager:civitaiModelId": 66,
      "lora-manager:civitaiVersionId": 77,
      "lora-manager:modelName": "Gyoza Style",
      "lora-manager:versionName": "v2",
      "lora-manager:baseModel": "SD 1.5",
      "lora-manager:trainedWords": ["gyoza"],
      "lora-manager:tags": ["style"],
      "lora-manager:notes": "use at 0.6",
    });
    store.db.close();
  });

  it("groups files into Civitai models and versions as their sidecars say, and follows sidecar changes", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    await copyFile(join(models, FILES.checkpoint), join(models, "gyozamix-v1-copy.safetensors"));
    await copyFile(join(models, "gyozamix-v1.civitai.info"), join(models, "gyozamix-v1-copy.civitai.info"));
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    const gyozaMixV1 = {
      model: { name: "GyozaMix", type: "Checkpoint", civitaiModelId: 56 },
      name: "v1.0",
      baseModel: "SD 1.5",
      civitaiVersionId: 1234,
      source: "civitai-helper",
    };
    expect(entryNamed(store, FILES.checkpoint).versions).toEqual([gyozaMixV1]);
    expect(entryNamed(store, "gyozamix-v1-copy.safetensors").versions).toEqual([gyozaMixV1]);
    expect(entryNamed(store, FILES.sdxlCkpt).versions).toEqual([
      {
        model: { name: "SDXL Base", type: "Checkpoint", civitaiModelId: 101 },
        name: "1.0",
        baseModel: "SDXL 1.0",
        civitaiVersionId: 202,
        source: "stability-matrix",
      },
    ]);
    expect(entryNamed(store, FILES.vae).versions).toEqual([]);
    const count = (table: string) =>
      store.db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
    expect(entryNamed(store, FILES.lora).versions).toEqual([
      {
        model: { name: "Gyoza Style", type: "LORA", civitaiModelId: 66 },
        name: "v2",
        baseModel: "SD 1.5",
        civitaiVersionId: 77,
        source: "lora-manager",
      },
    ]);
    expect([count("models"), count("versions"), count("version_files")]).toEqual([3, 3, 4]);
    await rm(join(models, "gyozamix-v1-copy.civitai.info"));
    await rescanLibrary(store, { cacheDir: false });
    expect(entryNamed(store, "gyozamix-v1-copy.safetensors").versions).toEqual([]);
    expect(count("version_files")).toBe(3);
    store.db.close();
  });

  it("re-scans with nothing changed without opening or hashing any file", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    const hashedAt = listEntries(store).map((entry) => entry.hashedAt);
    const summary = await rescanLibrary(store, { cacheDir: false });
    expect(summary).toMatchObject({ files: 6, unchanged: 6, hashed: 0, added: 0, changed: 0, missing: 0 });
    expect(listEntries(store).map((entry) => entry.hashedAt)).toEqual(hashedAt);
    store.db.close();
  });

  it("picks up a sidecar written beside an unchanged model on re-scan, without hashing it", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    await writeFile(
      join(models, "gyoza-style.civitai.info"),
      JSON.stringify({ id: 9, modelId: 8, baseModel: "SD 1.5" }),
    );
    expect(await rescanLibrary(store, { cacheDir: false })).toMatchObject({ hashed: 0, unchanged: 6 });
    const facts = entryNamed(store, FILES.lora)
      .sidecars.filter((fact) => fact.source === "civitai-helper")
      .map((fact) => [fact.fact, fact.value]);
    expect(facts).toEqual([
      ["baseModel", "SD 1.5"],
      ["civitaiModelId", 8],
      ["civitaiVersionId", 9],
    ]);
    store.db.close();
  });

  it("hashes a file again when its contents change, keeping its identity", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    const before = entryNamed(store, FILES.hostile);
    await writeFile(join(models, FILES.hostile), "changed, and longer than before");
    const summary = await rescanLibrary(store, { cacheDir: false });
    expect(summary).toMatchObject({ changed: 1, hashed: 1, unchanged: 5 });
    const after = entryNamed(store, FILES.hostile);
    expect(after.id).toBe(before.id);
    expect(after.hashes?.SHA256).not.toBe(before.hashes?.SHA256);
    store.db.close();
  });

  it("recognises a moved file by its sha256: same entry, new path", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    const before = entryNamed(store, FILES.checkpoint);
    await mkdir(join(models, "archive"));
    await rename(join(models, FILES.checkpoint), join(models, "archive", "renamed.safetensors"));
    const summary = await rescanLibrary(store, { cacheDir: false });
    expect(summary).toMatchObject({ moved: 1, missing: 0, added: 0 });
    const after = entryNamed(store, "renamed.safetensors");
    expect(after).toMatchObject({ id: before.id, missing: false, firstSeenAt: before.firstSeenAt });
    expect(after.path).toBe(join(models, "archive", "renamed.safetensors"));
    expect(after.sidecars.map((fact) => fact.fact)).not.toContain("civitaiModelId");
    expect(listEntries(store)).toHaveLength(6);
    store.db.close();
  });

  it("marks a deleted file missing and keeps its row; it comes back when the file does", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    const bytes = await readFile(join(models, FILES.vae));
    await rm(join(models, FILES.vae));
    expect(await rescanLibrary(store, { cacheDir: false })).toMatchObject({ missing: 1, files: 5 });
    expect(entryNamed(store, FILES.vae)).toMatchObject({ missing: true, kind: "vae" });
    expect(listEntries(store, { includeMissing: false }).map((entry) => entry.name)).not.toContain(FILES.vae);
    await writeFile(join(models, FILES.vae), bytes);
    expect(await rescanLibrary(store, { cacheDir: false })).toMatchObject({ missing: 0, changed: 1 });
    expect(entryNamed(store, FILES.vae).missing).toBe(false);
    store.db.close();
  });

  it("follows symlinked folders and files, walking a link loop only once", async () => {
    const models = join(dir, "models");
    await writeModelFolder(join(dir, "elsewhere"));
    await mkdir(models);
    await symlink(join(dir, "elsewhere"), join(models, "linked"));
    await symlink(models, join(dir, "elsewhere", "loop"));
    const store = openStore();
    const summary = await addToLibrary(store, [models], { cacheDir: false });
    expect(summary.files).toBe(6);
    expect(entryNamed(store, FILES.checkpoint).path).toBe(join(models, "linked", FILES.checkpoint));
    store.db.close();
  });

  it("never modifies a model file, a sidecar or an image", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    await copyFile(
      new URL("../../test/fixtures/images/a1111_enslo_sd-webui_jpg.jpg", import.meta.url),
      join(models, "sample.jpg"),
    );
    const names = [
      ...Object.values(FILES),
      "gyozamix-v1.civitai.info",
      "kl-f8-anime.json",
      "sdxl-base.cm-info.json",
      "gyozamix-v1.preview.png",
      "sample.jpg",
    ];
    const snapshot = async () =>
      Promise.all(
        names.map(async (name) => {
          const path = join(models, name);
          return [(await readFile(path)).toString("base64"), (await stat(path)).mtimeMs];
        }),
      );
    const before = await snapshot();
    const store = openStore();
    await addToLibrary(store, [models], { cacheDir: false });
    await rescanLibrary(store, { cacheDir: false });
    expect(await snapshot()).toEqual(before);
    store.db.close();
  });

  it("two processes adding the same folders to one library at once leave it consistent", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    await writeModelFolder(join(models, "more"));
    const library = join(dir, "library.db");
    const cli = new URL("../cli/main.ts", import.meta.url).pathname;
    const runScan = () =>
      new Promise<{ code: number | null; stderr: string }>((resolveRun) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", cli, "library", "add", models, "--library", library, "--no-hash-cache"],
          {
            env: process.env,
          },
        );
        let stderr = "";
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (code) => resolveRun({ code, stderr }));
      });
    const results = await Promise.all([runScan(), runScan()]);
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    const store = openStore();
    expect(store.db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(store.db.pragma("foreign_key_check")).toEqual([]);
    const entries = listEntries(store);
    expect(entries).toHaveLength(12);
    expect(new Set(entries.map((entry) => entry.path)).size).toBe(12);
    expect(
      entries.filter((entry) => entry.kind !== "unreadable").every((entry) => entry.hashes !== null),
    ).toBe(true);
    store.db.close();
  });
});
