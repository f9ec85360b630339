import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultHashCacheDir, HASH_CACHE_FILE, HashCache } from "./hash-cache.js";
import { hashFiles } from "./hash-file.js";

let dir: string;
let cacheDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-hash-cache-"));
  cacheDir = join(dir, "cache");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function modelFile(bytes: Uint8Array = randomBytes(4096)): Promise<string> {
  const path = join(dir, "model.safetensors");
  await writeFile(path, bytes);
  await utimes(path, 1_700_000_000, 1_700_000_000);
  return path;
}

describe("the hash cache", () => {
  it("answers the second request from the cache with the same hashes", async () => {
    const path = await modelFile();
    const [first] = await hashFiles([path], { cacheDir });
    const [second] = await hashFiles([path], { cacheDir });
    expect(first!.fromCache).toBe(false);
    expect(second!.fromCache).toBe(true);
    expect(second!.hashes).toEqual(first!.hashes);
    const stored = JSON.parse(await readFile(join(cacheDir, HASH_CACHE_FILE), "utf8"));
    expect(Object.keys(stored.entries)).toEqual([resolve(path)]);
  });

  it("hashes again when the file changes, even with the same size", async () => {
    const path = await modelFile(new Uint8Array(4096).fill(1));
    const [before] = await hashFiles([path], { cacheDir });
    await writeFile(path, new Uint8Array(4096).fill(2));
    await utimes(path, 1_700_000_100, 1_700_000_100);
    const [after] = await hashFiles([path], { cacheDir });
    expect(after!.fromCache).toBe(false);
    expect(after!.hashes.sha256).not.toBe(before!.hashes.sha256);
  });

  it("hashes again when asked to refresh, and stores the fresh result", async () => {
    const path = await modelFile();
    await hashFiles([path], { cacheDir });
    const [forced] = await hashFiles([path], { cacheDir, refresh: true });
    expect(forced!.fromCache).toBe(false);
    expect((await hashFiles([path], { cacheDir }))[0]!.fromCache).toBe(true);
  });

  it("computes hashes the cache lacks, then serves subsets of what it holds", async () => {
    const path = await modelFile();
    const [crcOnly] = await hashFiles([path], { cacheDir, algorithms: ["crc32"] });
    expect(Object.keys(crcOnly!.hashes)).toEqual(["crc32", "crc32Civitai"]);
    expect((await hashFiles([path], { cacheDir }))[0]!.fromCache).toBe(false);
    const [subset] = await hashFiles([path], { cacheDir, algorithms: ["autov2"] });
    expect(subset!.fromCache).toBe(true);
    expect(Object.keys(subset!.hashes)).toEqual(["autoV2", "a1111"]);
  });

  it("ignores a damaged cache file and replaces it", async () => {
    const path = await modelFile();
    await mkdir(cacheDir, { recursive: true });
    await writeFile(join(cacheDir, HASH_CACHE_FILE), "{ not json");
    const [result] = await hashFiles([path], { cacheDir });
    expect(result!.fromCache).toBe(false);
    expect((await hashFiles([path], { cacheDir }))[0]!.fromCache).toBe(true);
  });

  it("drops entries whose fields are not hex instead of trusting them", async () => {
    const path = await modelFile();
    await hashFiles([path], { cacheDir });
    const file = join(cacheDir, HASH_CACHE_FILE);
    const stored = JSON.parse(await readFile(file, "utf8"));
    stored.entries[resolve(path)].hashes.sha256 = "<script>";
    await writeFile(file, JSON.stringify(stored));
    expect((await hashFiles([path], { cacheDir }))[0]!.fromCache).toBe(false);
  });

  it("keeps entries another process saved in the meantime", async () => {
    const first = await HashCache.open(cacheDir);
    const second = await HashCache.open(cacheDir);
    first.set("/a", 1, 1, { crc32: "00000001" });
    second.set("/b", 2, 2, { crc32: "00000002" });
    await first.save();
    await second.save();
    const reopened = await HashCache.open(cacheDir);
    expect(reopened.get("/a", 1, 1)).toEqual({ crc32: "00000001" });
    expect(reopened.get("/b", 2, 2)).toEqual({ crc32: "00000002" });
    expect(reopened.get("/b", 2, 3)).toBeUndefined();
    expect((await readdir(cacheDir)).filter((name) => name.includes("partial"))).toEqual([]);
  });

  it("lives in $GYOZA_CACHE_DIR, else in ~/.cache/gyoza", () => {
    expect(defaultHashCacheDir({ GYOZA_CACHE_DIR: "/somewhere" })).toBe("/somewhere");
    expect(defaultHashCacheDir({})).toBe(join(homedir(), ".cache", "gyoza"));
  });
});
