import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GyozaError, isGyozaError } from "../errors.js";
import { type CivitaiServer, startCivitaiServer } from "../test-support/civitai-server.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { CivitaiCache } from "./civitai-cache.js";
import { CivitaiClient, type CivitaiClientOptions } from "./civitai-client.js";
import { retryAfterMs } from "./civitai-http.js";

const SHA256 = "6EA451B149CC5174F9B795911524D12CAC54B3235467601934F51AE358E606CD";
const AUTOV2 = "6EA451B149";

let dir = "";
useTempDirWithHashCache("gyoza-civitai-", (path) => (dir = path), { each: true });

let server: CivitaiServer;
beforeAll(async () => {
  server = await startCivitaiServer();
});
afterAll(async () => server.close());
beforeEach(() => {
  server.requests.length = 0;
  server.headers.length = 0;
});

/** A client of the local server with fast backoff and its cache in this test's temp dir. */
function client(options: CivitaiClientOptions = {}): CivitaiClient {
  return new CivitaiClient({ baseUrl: server.url, backoffMs: 5, cache: join(dir, "civitai"), ...options });
}

async function failure(promise: Promise<unknown>): Promise<GyozaError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GyozaError);
  return error as GyozaError;
}

describe("CivitaiClient lookups", () => {
  it("finds a model version by any of its file's hashes, in either case", async () => {
    const civitai = client({ cache: false });
    for (const hash of [SHA256, SHA256.toLowerCase(), AUTOV2, "03E3C2420F50", "20260E29"]) {
      const version = await civitai.modelVersionByHash(hash);
      expect(version).toMatchObject({ id: 777001, modelId: 77700, name: "v1.0", baseModel: "SD 1.5" });
    }
    const version = await civitai.modelVersionByHash(AUTOV2);
    expect(version.model).toMatchObject({ name: "Gyoza Tiny", type: "LORA", nsfw: false });
    expect(version.trainedWords).toEqual(["gyoza style", "dumpling steam"]);
    expect(version.files[0]).toMatchObject({
      name: "gyozaTiny_v10.safetensors",
      metadata: { format: "SafeTensor" },
      hashes: { SHA256, AutoV2: AUTOV2 },
      primary: true,
    });
    expect(version.images?.[0]?.meta).toMatchObject({ "Model hash": "477a3379ac", cfgScale: 7, steps: 28 });
    // Fields gyoza does not name are kept (the schema is loose).
    expect(version).toMatchObject({ air: "urn:air:sd1:lora:civitai:77700@777001" });
    expect(server.requests.at(-1)).toBe(`/api/v1/model-versions/by-hash/${AUTOV2}`);
  });

  it("gets a model version and a model by id", async () => {
    const civitai = client();
    expect(await civitai.modelVersion(777002)).toMatchObject({ name: "v0.9", files: [{}, {}] });
    const model = await civitai.model(77700);
    expect(model).toMatchObject({ name: "Gyoza Tiny", tags: ["food", "style", "dumplings"] });
    expect(model.creator?.username).toBe("gyoza-tests");
    expect(model.modelVersions.map((version) => version.id)).toEqual([777001, 777002]);
  });

  it("sends the API key as a Bearer token, and no Authorization without one", async () => {
    await client({ apiKey: "k-123", cache: false }).modelVersion(777001);
    await client({ cache: false }).modelVersion(777001);
    expect(server.headers.map((headers) => headers.authorization)).toEqual(["Bearer k-123", undefined]);
  });

  it("says a hash Civitai does not know is not found (404), with its own code", async () => {
    const error = await failure(client().modelVersionByHash("ABCDEF0123"));
    expect(error.message).toBe("civitai: model version for hash ABCDEF0123 not found (404)");
    expect(isGyozaError(error, "not-found")).toBe(true);
    expect((await failure(client().model(5))).message).toBe("civitai: model 5 not found (404)");
    expect(await client().findModelVersionByHash("abcdef0123")).toBeUndefined();
  });
});

describe("CivitaiClient retries", () => {
  it("waits as a 429's Retry-After says, then succeeds", async () => {
    server.inject({ status: 429, retryAfter: "1" }, 1);
    const waits: number[] = [];
    const started = Date.now();
    const civitai = client({ onRetry: (event) => waits.push(event.delayMs) });
    expect((await civitai.modelVersion(777001)).id).toBe(777001);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(waits).toEqual([1000]);
    expect(server.requests).toHaveLength(2);
  });

  it("backs off on 502/503 and succeeds when the server recovers", async () => {
    server.inject({ status: 503 }, 2);
    const waits: number[] = [];
    const civitai = client({ backoffMs: 20, onRetry: (event) => waits.push(event.delayMs) });
    expect((await civitai.model(77700)).id).toBe(77700);
    expect(server.requests).toHaveLength(3);
    // Exponential with jitter: half the delay fixed, half random.
    expect(waits[0]).toBeGreaterThanOrEqual(10);
    expect(waits[0]).toBeLessThanOrEqual(20);
    expect(waits[1]).toBeGreaterThanOrEqual(20);
    expect(waits[1]).toBeLessThanOrEqual(40);
  });

  it("gives up after 4 tries of 503 with a clear error", async () => {
    server.inject({ status: 503 }, 4);
    const error = await failure(client().modelVersion(777001));
    expect(error.message).toMatch(
      /^civitai: gave up after 4 tries: 503 Service Unavailable \(GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/model-versions\/777001\)$/,
    );
    expect(isGyozaError(error, "network")).toBe(true);
    expect(server.requests).toHaveLength(4);
  });

  it("times out a try that gets no answer, and retries it", async () => {
    server.inject({ delayMs: 1500 }, 1);
    const error = await failure(client({ timeoutMs: 200, retries: 0 }).modelVersion(777001));
    expect(error.message).toMatch(/^civitai: no answer within 200 ms \(GET http:\/\/127\.0\.0\.1:\d+\//);
    server.inject({ delayMs: 1500 }, 1);
    expect((await client({ timeoutMs: 200, retries: 1 }).modelVersion(777001)).id).toBe(777001);
  });

  it("names a refused connection after retrying it", async () => {
    const closed = await startCivitaiServer();
    await closed.close();
    const error = await failure(
      new CivitaiClient({ baseUrl: closed.url, backoffMs: 1, cache: false }).model(1),
    );
    expect(error.message).toMatch(/^civitai: gave up after 4 tries: connection refused \(ECONNREFUSED\)/);
  });

  it("refuses to wait out a Retry-After longer than the limit", async () => {
    server.inject({ status: 429, retryAfter: "3600" }, 1);
    const error = await failure(client().modelVersion(777001));
    expect(error.message).toMatch(/^civitai: 429 Too Many Requests, and asked to wait 3600 s/);
    expect(server.requests).toHaveLength(1);
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    const now = Date.parse("2026-12-05T12:00:00Z");
    expect(retryAfterMs("7", now)).toBe(7000);
    expect(retryAfterMs("Sat, 05 Dec 2026 12:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("Sat, 05 Dec 2026 11:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});

describe("CivitaiClient cache", () => {
  it("answers a repeated lookup from the cache without a request", async () => {
    await client().modelVersionByHash(SHA256);
    const again = client();
    expect((await again.modelVersionByHash(SHA256.toLowerCase())).id).toBe(777001);
    expect(again.requests).toBe(0);
    expect(server.requests).toHaveLength(1);
    expect(await readdir(join(dir, "civitai"))).toHaveLength(1);
  });

  it("caches not-found for a shorter time than a found answer", async () => {
    let now = Date.parse("2026-12-05T12:00:00Z");
    const cache = new CivitaiCache(join(dir, "civitai"), {
      ttlMs: 10_000,
      notFoundTtlMs: 1_000,
      now: () => now,
    });
    const civitai = client({ cache });
    expect(await civitai.findModelVersionByHash("ABCDEF0123")).toBeUndefined();
    await civitai.modelVersion(777001);
    now += 500;
    expect(await civitai.findModelVersionByHash("ABCDEF0123")).toBeUndefined();
    await civitai.modelVersion(777001);
    expect(civitai.requests).toBe(2);
    now += 1_000;
    expect(await civitai.findModelVersionByHash("ABCDEF0123")).toBeUndefined();
    await civitai.modelVersion(777001);
    expect(civitai.requests).toBe(3);
    now += 10_000;
    await civitai.modelVersion(777001);
    expect(civitai.requests).toBe(4);
  });

  it("asks again with refresh, and stores the fresh answer", async () => {
    await client().modelVersion(777001);
    const fresh = client({ refresh: true });
    await fresh.modelVersion(777001);
    expect(fresh.requests).toBe(1);
  });

  it("treats a damaged cache file as a miss and replaces it", async () => {
    const cache = new CivitaiCache(join(dir, "civitai"));
    await client({ cache }).modelVersion(777001);
    const file = cache.fileFor(`${server.url}/api/v1/model-versions/777001`);
    await writeFile(file, '{"version":1,"url":');
    const civitai = client({ cache });
    expect((await civitai.modelVersion(777001)).id).toBe(777001);
    expect(civitai.requests).toBe(1);
    const again = client({ cache });
    await again.modelVersion(777001);
    expect(again.requests).toBe(0);
  });
});

describe("CivitaiClient against hostile answers", () => {
  it("rejects an answer that is not JSON, without retrying or caching it", async () => {
    server.route("/api/v1/model-versions/1", { text: "<html>Cloudflare says hi</html>" });
    const error = await failure(client().modelVersion(1));
    expect(error.message).toMatch(
      /^civitai: the answer to GET http:\/\/\S+\/api\/v1\/model-versions\/1 is not JSON \(/,
    );
    expect(isGyozaError(error, "format")).toBe(true);
    expect(server.requests).toHaveLength(1);
    await expect(readdir(join(dir, "civitai"))).rejects.toThrow(/ENOENT/);
  });

  it("rejects a model version whose files are not a list, naming the field", async () => {
    server.route("/api/v1/model-versions/2", {
      body: { id: 2, modelId: 3, name: "x", model: { name: "m" }, files: {} },
    });
    const error = await failure(client().modelVersion(2));
    expect(error.message).toMatch(/ is not a model version: files: .*expected array/);
  });

  it("rejects a model whose versions carry a negative id", async () => {
    server.route("/api/v1/models/4", {
      body: { id: 4, name: "m", modelVersions: [{ id: -1, name: "v", files: [] }] },
    });
    const error = await failure(client().model(4));
    expect(error.message).toMatch(/ is not a model: modelVersions\.0\.id: /);
  });

  it("refuses an answer larger than 16 MiB without holding it", async () => {
    server.route("/api/v1/model-versions/5", { text: `"${"x".repeat(16 * 1024 * 1024)}"` });
    const error = await failure(client().modelVersion(5));
    expect(error.message).toMatch(/ is larger than 16777216 bytes$/);
    expect(isGyozaError(error, "limit")).toBe(true);
    server.route("/api/v1/model-versions/6", { text: `"${"x".repeat(16 * 1024 * 1024)}"`, chunked: true });
    expect((await failure(client().modelVersion(6))).message).toMatch(/ is larger than 16777216 bytes$/);
  });

  it("does not take a 404 that is not Civitai's JSON for not-found, nor cache it", async () => {
    server.route("/api/v1/model-versions/7", { status: 404, text: "<html>Not Found</html>" });
    const error = await failure(client().modelVersion(7));
    expect(error.message).toMatch(
      /^civitai: 404 Not Found for GET \S+, and not Civitai's \{"error": \.\.\.\}: <html>/,
    );
    expect(error.fix).toMatch(/--base-url/);
    await expect(readdir(join(dir, "civitai"))).rejects.toThrow(/ENOENT/);
  });

  it("does not retry a 401, and says how to pass a key", async () => {
    server.inject({ status: 401, text: '{"error":"Unauthorized"}' }, 1);
    const error = await failure(client().modelVersion(777001));
    expect(error.message).toMatch(/^civitai: 401 Unauthorized for GET \S+: \{"error":"Unauthorized"\}$/);
    expect(error.fix).toMatch(/CIVITAI_API_KEY/);
    expect(server.requests).toHaveLength(1);
  });

  it("refuses a hash that is not 8 to 64 hex digits before any request", async () => {
    for (const hash of ["abc", "../../models/1", "ZZZZZZZZZZ", "0".repeat(65)]) {
      const error = await failure(client().modelVersionByHash(hash));
      expect(isGyozaError(error, "usage"), hash).toBe(true);
    }
    await expect(client().model(-3)).rejects.toThrow(/-3 is not a Civitai id/);
    expect(server.requests).toHaveLength(0);
  });
});
