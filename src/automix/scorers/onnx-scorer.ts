import { readFile } from "node:fs/promises";
import { GyozaError, throwIfAborted } from "../../errors.js";
import type { ImageScorer, ScoreOptions, ScorerImage } from "./scorer.js";

/** CLIP's image normalisation (OpenAI CLIP, as the LAION aesthetic predictor's embedding uses). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
/** A scorer model is a user's file read whole; CLIP ViT-L/14 + head is ~1.2 GB in fp32. */
export const MAX_ONNX_MODEL_BYTES = 4 * 1024 ** 3;

export interface OnnxScorerOptions {
  readonly name?: string;
  /** The model file (.onnx), a local path: nothing is downloaded. */
  readonly model: string;
  /**
   * Image side in pixels (the model's input is [batch, 3, size, size]); default: read from the
   * model's input shape, else 224 (CLIP ViT).
   */
  readonly size?: number;
  /** "clip": (v/255 − CLIP mean) / CLIP std per channel (default); "unit": v/255. */
  readonly normalize?: "clip" | "unit";
}

type Ort = typeof import("onnxruntime-node");

async function loadOrt(): Promise<Ort> {
  try {
    return (await import("onnxruntime-node")) as Ort;
  } catch (cause) {
    throw new GyozaError(
      "usage",
      "the ONNX scorer needs the optional package onnxruntime-node, which is not installed",
      {
        fix: "npm install onnxruntime-node (gyoza's .npmrc sets onnxruntime-node-install=skip: the CPU build ships in the package)",
        cause,
      },
    );
  }
}

/**
 * A LAION-aesthetic-style scorer: a user's ONNX model that takes a preprocessed image tensor
 * [batch, 3, size, size] (float32, RGB, resized to cover and centre-cropped) and gives one number
 * per image (its first output, [batch] or [batch, 1]). Runs on the CPU through onnxruntime-node.
 */
export function onnxScorer(options: OnnxScorerOptions): ImageScorer {
  let session:
    | Promise<{ ort: Ort; session: import("onnxruntime-node").InferenceSession; size: number; input: string }>
    | undefined;
  const open = async () => {
    const ort = await loadOrt();
    let bytes: Buffer;
    try {
      bytes = await readFile(options.model);
    } catch (cause) {
      throw new GyozaError("io", `cannot read the ONNX scorer's model: ${(cause as Error).message}`, {
        file: options.model,
        cause,
      });
    }
    if (bytes.byteLength > MAX_ONNX_MODEL_BYTES)
      throw new GyozaError("limit", `the ONNX scorer's model is over ${MAX_ONNX_MODEL_BYTES} bytes`, {
        file: options.model,
      });
    let created: import("onnxruntime-node").InferenceSession;
    try {
      created = await ort.InferenceSession.create(bytes);
    } catch (cause) {
      throw new GyozaError(
        "format",
        `onnxruntime cannot load the scorer model: ${(cause as Error).message}`,
        { file: options.model, cause },
      );
    }
    const input = created.inputNames[0];
    if (!input || created.inputNames.length !== 1 || created.outputNames.length < 1)
      throw new GyozaError(
        "format",
        "the scorer model must take one input (the image tensor) and give a score output",
        {
          file: options.model,
        },
      );
    const meta = (created as unknown as { inputMetadata?: { shape?: unknown[] }[] }).inputMetadata?.[0]
      ?.shape;
    const fromModel = typeof meta?.[3] === "number" && meta[3] > 0 ? meta[3] : undefined;
    const size = options.size ?? fromModel ?? 224;
    if (!Number.isInteger(size) || size < 1 || size > 4096)
      throw new GyozaError("usage", `the ONNX scorer's image size must be 1-4096, not ${size}`);
    return { ort, session: created, size, input };
  };
  return {
    name: options.name ?? "onnx",
    kind: "images",
    async score(images: readonly ScorerImage[], scoreOptions: ScoreOptions = {}): Promise<number[]> {
      throwIfAborted(scoreOptions.signal);
      if (images.length === 0) return [];
      session ??= open();
      const { ort, session: model, size, input } = await session;
      const plane = size * size;
      const data = new Float32Array(images.length * 3 * plane);
      for (const [n, image] of images.entries()) {
        throwIfAborted(scoreOptions.signal);
        const pixels = await preprocess(image.png, size);
        for (let c = 0; c < 3; c++) {
          const base = (n * 3 + c) * plane;
          for (let i = 0; i < plane; i++) {
            const v = pixels[i * 3 + c]! / 255;
            data[base + i] = options.normalize === "unit" ? v : (v - CLIP_MEAN[c]!) / CLIP_STD[c]!;
          }
        }
      }
      const results = await model.run({
        [input]: new ort.Tensor("float32", data, [images.length, 3, size, size]),
      });
      const output = results[model.outputNames[0]!]!;
      const values = Array.from(output.data as Float32Array, Number);
      if (values.length !== images.length)
        throw new GyozaError(
          "format",
          `the scorer model gave ${values.length} numbers for ${images.length} images`,
          {
            file: options.model,
            fix: "its first output must be one score per image ([batch] or [batch, 1])",
          },
        );
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0)
        throw new GyozaError("format", `the scorer model gave image ${bad} the score ${values[bad]}`, {
          file: options.model,
        });
      return values;
    },
  };
}

/** RGB bytes, HWC, resized to cover size×size and centre-cropped (CLIP's preprocessing, bicubic). */
async function preprocess(png: Buffer, size: number): Promise<Buffer> {
  const sharp = (await import("sharp")).default;
  return sharp(png, { limitInputPixels: 8192 * 8192 })
    .removeAlpha()
    .toColourspace("srgb")
    .resize(size, size, { fit: "cover", position: "centre", kernel: "cubic" })
    .raw()
    .toBuffer();
}
