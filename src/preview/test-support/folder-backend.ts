import { readdir } from "node:fs/promises";
import type {
  BackendCheck,
  BackendConfig,
  GeneratedImage,
  GenerateOptions,
  GenerateRequest,
  GenerationBackend,
} from "../../backends/types.js";
import { makePngTextChunk } from "../../image/png-writer.js";
import { buildPng } from "../../image/test-support/test-images.js";

/**
 * A GenerationBackend for tests of staging and image writing without HTTP: it lists the
 * safetensors files of a folder (its "checkpoints folder", which need not be the configured
 * `modelFolder` — that is how a backend that cannot see gyoza's folder is tested) and returns a tiny
 * PNG, ComfyUI-style (prompt/workflow chunks) or A1111-style (its own infotext).
 */
export class FolderBackend implements GenerationBackend {
  readonly config: BackendConfig;
  readonly requests: GenerateRequest[] = [];
  refreshes = 0;
  /** Images returned before generate fails (for interrupt tests); undefined = never fails. */
  failAfter: number | undefined;

  constructor(
    modelFolder: string,
    readonly options: { kind?: "comfyui" | "a1111"; listsFolder?: string; prefix?: string } = {},
  ) {
    this.config = {
      name: "test",
      kind: options.kind ?? "comfyui",
      url: "http://127.0.0.1:1",
      modelFolder,
      modelPrefix: options.prefix ?? "",
      headers: {},
      timeoutSeconds: 10,
    };
  }

  async check(): Promise<BackendCheck> {
    return { backend: this.config.name, ok: true, items: [] };
  }

  async listCheckpoints(): Promise<string[]> {
    const names = await readdir(this.options.listsFolder ?? this.config.modelFolder).catch(
      () => [] as string[],
    );
    return names.filter((name) => name.endsWith(".safetensors")).map((name) => this.checkpointName(name));
  }

  async listVaes(): Promise<string[]> {
    return ["vae-ft-mse.safetensors"];
  }

  async refreshModels(): Promise<void> {
    this.refreshes++;
  }

  checkpointName(fileName: string): string {
    return this.config.modelPrefix ? `${this.config.modelPrefix}/${fileName}` : fileName;
  }

  async generate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GeneratedImage> {
    options.signal?.throwIfAborted();
    if (this.failAfter !== undefined && this.requests.length >= this.failAfter) {
      throw new Error("the test backend stops here");
    }
    this.requests.push(request);
    options.onProgress?.({ type: "step", step: request.steps, totalSteps: request.steps });
    options.onProgress?.({ type: "done" });
    const fill = (request.seed * 37) % 256;
    if (this.config.kind === "a1111") {
      const infotext = `${request.prompt}\nNegative prompt: ${request.negativePrompt}\nSteps: ${request.steps}, Sampler: ${request.sampler}, Seed: ${request.seed}, Model: ${request.checkpoint}, Version: v1.10.1`;
      return {
        png: Buffer.from(buildPng(8, 8, fill, [makePngTextChunk("parameters", infotext)])),
        infotext,
        backendJobId: `job-${this.requests.length}`,
      };
    }
    const graph = {
      "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: request.checkpoint } },
      "3": {
        class_type: "KSampler",
        inputs: {
          seed: request.seed,
          steps: request.steps,
          cfg: request.cfg,
          sampler_name: "euler",
          scheduler: "normal",
          denoise: 1,
          model: ["4", 0],
          positive: ["6", 0],
          negative: ["7", 0],
          latent_image: ["5", 0],
        },
      },
      "5": {
        class_type: "EmptyLatentImage",
        inputs: { width: request.width, height: request.height, batch_size: 1 },
      },
      "6": { class_type: "CLIPTextEncode", inputs: { text: request.prompt, clip: ["4", 1] } },
      "7": { class_type: "CLIPTextEncode", inputs: { text: request.negativePrompt, clip: ["4", 1] } },
    };
    const workflow = { last_node_id: 7, nodes: [], links: [], version: 0.4 };
    return {
      png: Buffer.from(
        buildPng(8, 8, fill, [
          makePngTextChunk("prompt", JSON.stringify(graph)),
          makePngTextChunk("workflow", JSON.stringify(workflow)),
        ]),
      ),
      comfyPrompt: graph,
      backendJobId: `prompt-${this.requests.length}`,
    };
  }
}
