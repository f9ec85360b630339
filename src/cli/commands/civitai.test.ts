import { createHash } from "node:crypto";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildValidSafetensors, pseudoRandomBytes } from "../../test-support/build-safetensors.js";
import {
  type CivitaiServer,
  startCivitaiServer,
  tinyCivitaiModelBytes,
} from "../../test-support/civitai-server.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir = "";
useTempDirWithHashCache("gyoza-civitai-cli-", (path) => (dir = path), { each: true });

let server: CivitaiServer;
beforeAll(async () => {
  server = await startCivitaiServer();
});
afterAll(async () => server.close());
beforeEach(() => {
  server.requests.length = 0;
});

const TINY_SHA256 = "6EA451B149CC5174F9B795911524D12CAC54B3235467601934F51AE358E606CD";

async function writeTinyModel(folder: string): Promise<string> {
  await mkdir(folder, { recursive: true });
  const path = join(folder, "gyozaTiny_v10.safetensors");
  await writeFile(path, tinyCivitaiModelBytes());
  return path;
}

describe("gyoza civitai lookup", () => {
  it("hashes a file and prints the version Civitai has for it, then answers from the cache", async () => {
    const model = await writeTinyModel(join(dir, "models"));
    const text = await runCli("civitai", "lookup", model, "--base-url", server.url);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^Gyoza Tiny v1\.0\n {2}type {10}LORA\n {2}base model {4}SD 1\.5\n/);
    expect(text.stdout).toContain(`  page          ${server.url}/models/77700?modelVersionId=777001\n`);
    expect(text.stdout).toContain("  trained words gyoza style, dumpling steam\n");
    expect(text.stdout).toMatch(
      /^ {2}file {10}gyozaTiny_v10\.safetensors {2}\(Model, SafeTensor, 0\.2 KB, primary, this file\)$/m,
    );
    expect(server.requests).toEqual([`/api/v1/model-versions/by-hash/${TINY_SHA256}`]);

    const json = await runCli("civitai", "lookup", model, "--base-url", server.url, "--json");
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      id: 777001,
      modelId: 77700,
      files: [{ hashes: { SHA256: TINY_SHA256 } }],
    });
    expect(server.requests).toHaveLength(1);

    const fresh = await runCli(
      "civitai",
      "lookup",
      "6ea451b149",
      "--base-url",
      server.url,
      "--no-cache",
      "--json",
    );
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(server.requests).toHaveLength(2);
  });

  it("exits 1 with Civitai's not-found, and 1 after giving up on a server that keeps refusing", async () => {
    const missing = await runCli("civitai", "lookup", "ABCDEF0123", "--base-url", server.url);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("civitai: model version for hash ABCDEF0123 not found (404)");

    server.inject({ status: 429, retryAfter: "0" }, 4);
    const busy = await runCli("civitai", "lookup", "0123456789", "--base-url", server.url);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/civitai: 429 Too Many Requests; trying again in 0\.0 s\n/);
    expect(busy.stderr).toMatch(/civitai: gave up after 4 tries: 429 Too Many Requests \(GET /);
  });

  it("refuses, with exit code 2, an argument that is neither a file nor a hash, or a base URL that is no URL", async () => {
    const neither = await runCli("civitai", "lookup", "no-such-model.safetensors", "--base-url", server.url);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/"no-such-model\.safetensors" is neither a file nor a hash/);
    const badUrl = await runCli("civitai", "lookup", "ABCDEF0123", "--base-url", "civitai.com");
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/"civitai\.com" is not a URL/);
    expect(server.requests).toHaveLength(0);
  });
});

interface Entry {
  name: string;
  versions: { name: string | null; source: string; model: { name: string; civitaiModelId: number | null } }[];
  sidecars: { source: string; fact: string; value: unknown }[];
}

describe("gyoza library fetch", () => {
  it("stores Civitai's answers as facts for files without any, groups them, and writes no sidecar", async () => {
    const models = join(dir, "models");
    await writeTinyModel(models);
    const unknown = buildValidSafetensors([
      { key: "w", dtype: "F32", shape: [4], data: pseudoRandomBytes(16, 9) },
    ]);
    await writeFile(join(models, "unknown.safetensors"), unknown);
    // An A1111 sidecar beside it: its facts stay beside Civitai's.
    await writeFile(join(models, "gyozaTiny_v10.json"), JSON.stringify({ "activation text": "gyoza style" }));
    // A third file whose answer has the wrong shape: noted, and the others go on.
    const odd = buildValidSafetensors([
      { key: "w", dtype: "F32", shape: [4], data: pseudoRandomBytes(16, 10) },
    ]);
    await writeFile(join(models, "odd.safetensors"), odd);
    const oddSha256 = createHash("sha256").update(odd).digest("hex").toUpperCase();
    server.route(`/api/v1/model-versions/by-hash/${oddSha256}`, { body: { id: 1, files: "none" } });
    const library = ["--library", join(dir, "library.db")];
    expect((await runCli("library", "add", models, ...library)).code).toBe(0);
    const before = (await readdir(models)).sort();

    const fetched = await runCli("library", "fetch", "--base-url", server.url, ...library);
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(fetched.stdout).toMatch(
      /^3 looked up, 1 found, 1 not on Civitai, 1 failed \(3 requests\)\n {2}\S+odd\.safetensors: civitai: the answer to GET \S+ is not a model version: /,
    );
    expect((await readdir(models)).sort()).toEqual(before);

    const list = await runCli("library", "list", "--json", ...library);
    const entries = JSON.parse(list.stdout) as Entry[];
    const tiny = entries.find((entry) => entry.name === "gyozaTiny_v10.safetensors")!;
    expect(tiny.versions).toMatchObject([
      { name: "v1.0", source: "civitai-api", model: { name: "Gyoza Tiny", civitaiModelId: 77700 } },
    ]);
    const facts = Object.fromEntries(
      tiny.sidecars.filter((fact) => fact.source === "civitai-api").map((fact) => [fact.fact, fact.value]),
    );
    expect(facts).toMatchObject({
      civitaiModelId: 77700,
      civitaiVersionId: 777001,
      baseModel: "SD 1.5",
      trainedWords: ["gyoza style", "dumpling steam"],
      modelType: "LORA",
    });
    expect(tiny.sidecars).toContainEqual(
      expect.objectContaining({ source: "a1111", fact: "activationText" }),
    );
    const other = entries.find((entry) => entry.name === "unknown.safetensors")!;
    expect(other.sidecars).toMatchObject([{ source: "civitai-api", fact: "civitaiNotFound", value: true }]);

    const again = await runCli("library", "fetch", "--base-url", server.url, "--json", ...library);
    expect(JSON.parse(again.stdout)).toMatchObject({ looked: 1, failed: [{}], requests: 1 });
    expect(server.requests).toHaveLength(4);
  });

  it("keeps Civitai's answer through re-scans while the file's bytes stay, and drops it when they change", async () => {
    const models = join(dir, "models");
    const path = await writeTinyModel(models);
    const library = ["--library", join(dir, "library.db")];
    expect((await runCli("library", "add", models, ...library)).code).toBe(0);
    expect((await runCli("library", "fetch", "--base-url", server.url, ...library)).code).toBe(0);
    const tiny = async (): Promise<Entry> => {
      const list = await runCli("library", "list", "--json", ...library);
      return (JSON.parse(list.stdout) as Entry[]).find(
        (entry) => entry.name === "gyozaTiny_v10.safetensors",
      )!;
    };
    const apiFacts = (entry: Entry) => entry.sidecars.filter((fact) => fact.source === "civitai-api");

    // a sidecar appearing makes the scan rewrite the file's facts: Civitai's must stay
    await writeFile(join(models, "gyozaTiny_v10.json"), JSON.stringify({ "activation text": "gyoza" }));
    expect((await runCli("library", "scan", ...library)).code).toBe(0);
    const kept = await tiny();
    expect(apiFacts(kept)).toContainEqual(
      expect.objectContaining({ fact: "civitaiVersionId", value: 777001 }),
    );
    expect(kept.sidecars).toContainEqual(
      expect.objectContaining({ source: "a1111", fact: "activationText" }),
    );
    expect(kept.versions).toMatchObject([{ name: "v1.0", source: "civitai-api" }]);

    // new bytes at the same path: the answer was about the old ones
    await writeFile(
      path,
      buildValidSafetensors([{ key: "w", dtype: "F32", shape: [4], data: pseudoRandomBytes(16, 11) }]),
    );
    expect((await runCli("library", "scan", ...library)).code).toBe(0);
    const changed = await tiny();
    expect(apiFacts(changed)).toEqual([]);
    expect(changed.versions).toEqual([]);
    expect(changed.sidecars).toContainEqual(
      expect.objectContaining({ source: "a1111", fact: "activationText" }),
    );
  }, 30_000);

  it("stops with exit 1, naming the reason, when Civitai cannot be reached", async () => {
    const models = join(dir, "models");
    await writeTinyModel(models);
    const library = ["--library", join(dir, "library.db")];
    expect((await runCli("library", "add", models, ...library)).code).toBe(0);
    const closed = await startCivitaiServer();
    await closed.close();
    const failed = await runCli("library", "fetch", "--base-url", closed.url, ...library);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/civitai: gave up after 4 tries: connection refused/);
  }, 20_000);
});
