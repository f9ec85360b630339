import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpScorer } from "./http-scorer.js";
import type { ScorerImage } from "./scorer.js";
import { type ScorerStandIn, standInScore, startScorerStandIn } from "./standin-scorer.js";

let server: ScorerStandIn;
let images: ScorerImage[];

async function solidPng(value: number): Promise<Buffer> {
  const sharp = (await import("sharp")).default;
  return sharp({ create: { width: 8, height: 8, channels: 3, background: { r: value, g: value, b: value } } })
    .png()
    .toBuffer();
}

beforeAll(async () => {
  server = await startScorerStandIn();
  images = [
    { png: await solidPng(0), prompt: "dark", seed: 1 },
    { png: await solidPng(255), prompt: "bright", seed: 2 },
  ];
});
afterAll(() => server.close());

const scorer = (extra: Partial<Parameters<typeof httpScorer>[0]> = {}) =>
  httpScorer({ url: server.url, backoffMs: 5, timeoutSeconds: 2, ...extra });

describe("HTTP scorer", () => {
  it("posts the images and gets one score per image, in order, as the server computes them", async () => {
    const scores = await scorer().score(images);
    expect(scores).toEqual([await standInScore(images[0]!.png), await standInScore(images[1]!.png)]);
    expect(scores[0]).toBeCloseTo(-2, 6);
    expect(scores[1]).toBeCloseTo(2, 6);
  });

  it("retries a 503 and an overlong wait, then succeeds", async () => {
    server.inject({ status: 503 }, 1);
    server.inject({ delayMs: 1500 }, 1);
    const before = server.requests.length;
    const scores = await scorer({ timeoutSeconds: 0.5, retries: 2 }).score(images);
    expect(scores).toHaveLength(2);
    expect(server.requests.length - before).toBe(3);
  });

  it("gives up after its retries with a network error that says how often and why", async () => {
    server.inject({ status: 500, text: "model not loaded" }, 3);
    await expect(scorer({ retries: 2 }).score(images)).rejects.toMatchObject({
      code: "network",
      message: expect.stringMatching(/failed 3 times; last: HTTP 500: model not loaded/),
    });
  });

  it("does not retry a 4xx refusal and reports the server's reason", async () => {
    server.inject({ status: 401, text: "bad token" }, 1);
    const before = server.requests.length;
    await expect(scorer().score(images)).rejects.toThrow(/HTTP 401: bad token/);
    expect(server.requests.length - before).toBe(1);
  });

  it("refuses an answer that is not JSON, lacks scores, has the wrong count or a non-number score", async () => {
    server.inject({ text: "<html>oops</html>" }, 1);
    await expect(scorer().score(images)).rejects.toThrow(/not JSON/);
    server.inject({ body: { result: [1, 2] } }, 1);
    await expect(scorer().score(images)).rejects.toThrow(/without a "scores" list/);
    server.inject({ body: { scores: [1] } }, 1);
    await expect(scorer().score(images)).rejects.toThrow(/gave 1 scores for 2 images/);
    server.inject({ body: { scores: [1, "NaN"] } }, 1);
    await expect(scorer().score(images)).rejects.toThrow(/score 1 as "NaN"/);
  });

  it("refuses a url that is not http(s)", () => {
    expect(() => httpScorer({ url: "file:///etc/passwd" })).toThrow(/http or https/);
  });

  it("stops waiting when the caller aborts", async () => {
    server.inject({ delayMs: 1000 }, 1);
    const controller = new AbortController();
    const pending = scorer({ timeoutSeconds: 5 }).score(images, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: "interrupted" });
  });
});
