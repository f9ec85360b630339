import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { hashFile } from "../hash/index.js";
import { findByHash, listModelFiles } from "./search-by-hash.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-search-"));
  await mkdir(join(dir, "a", "b"), { recursive: true });
  for (const [path, text] of [
    ["one.safetensors", "one"],
    ["a/two.ckpt", "two"],
    ["a/b/three.PT", "three"],
    ["a/b/notes.txt", "not a model"],
    ["a/zz.bin", "zz"],
  ]) {
    await writeFile(join(dir, path!), text!);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256Of = async (path: string) =>
  (await hashFile(path, { algorithms: ["sha256"], cacheDir: false })).sha256!.toLowerCase();

describe("listModelFiles", () => {
  it("walks folders recursively and keeps model extensions only, sorted", async () => {
    expect(await listModelFiles([dir])).toEqual(
      ["a/b/three.PT", "a/two.ckpt", "a/zz.bin", "one.safetensors"].map((path) => join(dir, path)),
    );
  });

  it("names the folder it cannot read", async () => {
    const error = await listModelFiles([join(dir, "missing")]).catch((caught: unknown) => caught);
    expect(isGyozaError(error, "io")).toBe(true);
    expect(String((error as Error).message) + (error as { file?: string }).file).toContain("missing");
  });
});

describe("findByHash", () => {
  it("hashes the files named as recorded first and stops once everything is found", async () => {
    const wanted = [
      { id: "x", hashes: { sha256: await sha256Of(join(dir, "a", "zz.bin")) }, nameHint: "zz.bin" },
    ];
    const result = await findByHash([dir], wanted, { cacheDir: false });
    expect(result.found.get("x")).toEqual({ path: join(dir, "a", "zz.bin"), matchedBy: "sha256" });
    expect(result).toMatchObject({ candidates: 4, hashed: 2 });
  });

  it("finds a renamed file by hash, searching everything when the name is gone", async () => {
    const wanted = [
      {
        id: "renamed",
        hashes: { sha256: await sha256Of(join(dir, "one.safetensors")) },
        nameHint: "old-name.ckpt",
      },
      { id: "absent", hashes: { sha256: "f".repeat(64) } },
    ];
    const result = await findByHash([dir], wanted, { cacheDir: false });
    expect(result.found.get("renamed")?.path).toBe(join(dir, "one.safetensors"));
    expect(result.found.has("absent")).toBe(false);
    expect(result.hashed).toBe(4);
  });
});
