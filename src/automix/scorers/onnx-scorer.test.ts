import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";
import { linearHeadModel } from "../../test-support/tiny-onnx.js";
import { CLIP_MEAN, CLIP_STD, onnxScorer } from "./onnx-scorer.js";
import type { ScorerImage } from "./scorer.js";

let dir = "";
useTempDirWithHashCache("gyoza-onnx-scorer-", (path) => (dir = path));

const WEIGHTS: [number, number, number] = [0.5, -1, 2];
const BIAS = 0.25;
let images: ScorerImage[];

async function solid(r: number, g: number, b: number, width = 32, height = 20): Promise<Buffer> {
  const sharp = (await import("sharp")).default;
  return sharp({ create: { width, height, channels: 4, background: { r, g, b, alpha: 1 } } })
    .png()
    .toBuffer();
}

beforeAll(async () => {
  const model = linearHeadModel({ size: 8, weights: WEIGHTS, bias: BIAS });
  expect(model.byteLength).toBeLessThan(1024);
  await writeFile(join(dir, "head.onnx"), model);
  images = [
    { png: await solid(255, 0, 0), prompt: "red", seed: 1 },
    { png: await solid(10, 200, 90), prompt: "green", seed: 2 },
  ];
});

/** The toy model's score by hand: mean of each normalised channel · weights + bias. */
function expected(rgb: [number, number, number], normalize: "clip" | "unit"): number {
  return rgb.reduce((sum, v, c) => {
    const unit = v / 255;
    const x = normalize === "unit" ? unit : (unit - CLIP_MEAN[c]!) / CLIP_STD[c]!;
    return sum + x * WEIGHTS[c]!;
  }, BIAS);
}

describe("ONNX scorer", () => {
  it("runs a tiny linear-head model on CLIP-normalised images and gives the score worked out by hand", async () => {
    const scores = await onnxScorer({ model: join(dir, "head.onnx") }).score(images);
    expect(scores[0]).toBeCloseTo(expected([255, 0, 0], "clip"), 4);
    expect(scores[1]).toBeCloseTo(expected([10, 200, 90], "clip"), 4);
  });

  it("takes the image size from the model's input shape and can skip CLIP normalisation", async () => {
    const scores = await onnxScorer({ model: join(dir, "head.onnx"), normalize: "unit" }).score(images);
    expect(scores[0]).toBeCloseTo(expected([255, 0, 0], "unit"), 4);
  });

  it("refuses a file that is not an ONNX model, naming it", async () => {
    await writeFile(join(dir, "junk.onnx"), Buffer.from("not a model at all"));
    await expect(onnxScorer({ model: join(dir, "junk.onnx") }).score(images)).rejects.toMatchObject({
      code: "format",
      file: join(dir, "junk.onnx"),
    });
  });

  it("refuses a missing model file with an io error", async () => {
    await expect(onnxScorer({ model: join(dir, "absent.onnx") }).score(images)).rejects.toMatchObject({
      code: "io",
    });
  });
});
