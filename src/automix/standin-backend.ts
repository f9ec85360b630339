import { createHash } from "node:crypto";
import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type {
  BackendCheck,
  BackendConfig,
  GeneratedImage,
  GenerateOptions,
  GenerateRequest,
  GenerationBackend,
} from "../backends/types.js";
import { GyozaError, throwIfAborted } from "../errors.js";

/** Bytes of a checkpoint's tail read for its colour (the tensor data, which the weights change). */
const FINGERPRINT_BYTES = 1 << 16;

/**
 * The automix demo's generation backend (`images: { backend: stand-in }`): in-process, no GPU,
 * no network. It lists the .safetensors files of its model folder like a ComfyUI that reads it,
 * and "generates" a small PNG whose colour follows the checkpoint's weights (a hash of the file's
 * last 64 KiB), the seed and the prompt — deterministic, so scorers and tests see real,
 * candidate-dependent images. Not a renderer: the pixels mean nothing.
 */
export class StandInBackend implements GenerationBackend {
  readonly config: BackendConfig;

  constructor(modelFolder: string) {
    this.config = {
      name: "stand-in",
      kind: "comfyui",
      url: "http://127.0.0.1:0",
      modelFolder,
      modelPrefix: "",
      headers: {},
      timeoutSeconds: 60,
    };
  }

  async check(): Promise<BackendCheck> {
    return { backend: "stand-in", ok: true, items: [{ check: "stand-in", ok: true, detail: "in-process" }] };
  }

  async listCheckpoints(): Promise<string[]> {
    const names = await readdir(this.config.modelFolder).catch(() => [] as string[]);
    return names.filter((name) => name.endsWith(".safetensors")).sort();
  }

  async listVaes(): Promise<string[]> {
    return [];
  }

  async refreshModels(): Promise<void> {}

  checkpointName(fileName: string): string {
    return fileName;
  }

  async generate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GeneratedImage> {
    throwIfAborted(options.signal);
    if (
      request.checkpoint.includes("/") ||
      request.checkpoint.includes("\\") ||
      request.checkpoint.startsWith(".")
    )
      throw new GyozaError("usage", `the stand-in backend has no checkpoint "${request.checkpoint}"`);
    const path = join(this.config.modelFolder, request.checkpoint);
    let tail: Buffer;
    try {
      const handle = await open(path, "r");
      try {
        const { size } = await handle.stat();
        const length = Math.min(size, FINGERPRINT_BYTES);
        tail = Buffer.alloc(length);
        await handle.read(tail, 0, length, size - length);
      } finally {
        await handle.close();
      }
    } catch (cause) {
      throw new GyozaError("io", `the stand-in backend cannot read checkpoint "${request.checkpoint}"`, {
        file: path,
        cause,
      });
    }
    const model = createHash("sha256").update(tail).digest();
    const detail = createHash("sha256").update(`${request.seed}\0${request.prompt}`).digest();
    const width = Math.min(128, Math.max(8, Math.round(request.width / 8)));
    const height = Math.min(128, Math.max(8, Math.round(request.height / 8)));
    const pixels = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const t = (x + y) / (width + height);
        for (let c = 0; c < 3; c++)
          pixels[(y * width + x) * 3 + c] = Math.round(
            model[c]! * (1 - t) + detail[c]! * t * 0.25 + model[c + 3]! * t * 0.75,
          );
      }
    }
    options.onProgress?.({ type: "done" });
    const sharp = (await import("sharp")).default;
    const png = await sharp(pixels, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer();
    return { png };
  }
}
