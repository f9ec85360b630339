import { GyozaError } from "../errors.js";
import { checkBackend } from "./check.js";
import { backendFetch, backendLabel, clip, readJson, sleep } from "./http.js";
import type {
  BackendCheck,
  BackendConfig,
  GeneratedImage,
  GenerateOptions,
  GenerateRequest,
  GenerationBackend,
} from "./types.js";

/** How often A1111's /sdapi/v1/progress is asked while an image is made (ms). */
export const A1111_PROGRESS_POLL_MS = 500;

/** The txt2img body gyoza sends (one image, nothing saved on the server, settings restored after). */
export function buildA1111Payload(request: GenerateRequest): Record<string, unknown> {
  const loraTags = (request.loras ?? []).map(
    (lora) => `<lora:${lora.name.replace(/\.(safetensors|pt|ckpt)$/i, "")}:${lora.strength}>`,
  );
  return {
    prompt: [request.prompt, ...loraTags].filter(Boolean).join(" "),
    negative_prompt: request.negativePrompt,
    seed: request.seed,
    steps: request.steps,
    cfg_scale: request.cfg,
    sampler_name: request.sampler,
    scheduler: request.scheduler || "Automatic",
    width: request.width,
    height: request.height,
    batch_size: 1,
    n_iter: 1,
    override_settings: {
      sd_model_checkpoint: request.checkpoint,
      sd_vae: request.vae ?? "None",
      CLIP_stop_at_last_layers: Math.max(1, Math.trunc(request.clipSkip)),
    },
    override_settings_restore_afterwards: true,
    send_images: true,
    save_images: false,
  };
}

/** A1111's error answers in plain words: 422 `{detail: [{loc, msg}]}`, 500 `{error, errors}`, 404 `{detail}`. */
export function describeA1111Error(status: number, body: unknown): string {
  const answer = (body ?? {}) as { detail?: unknown; error?: unknown; errors?: unknown; body?: unknown };
  if (Array.isArray(answer.detail)) {
    return answer.detail
      .map((item: { loc?: unknown[]; msg?: string }) => {
        const where = Array.isArray(item?.loc) ? item.loc.filter((part) => part !== "body").join(".") : "";
        return `${where ? `${where}: ` : ""}${item?.msg ?? JSON.stringify(item)}`;
      })
      .join("; ");
  }
  if (typeof answer.error === "string") {
    const errors = typeof answer.errors === "string" ? answer.errors : "";
    return clip(`${answer.error}${errors ? `: ${errors}` : ""}`, 500);
  }
  if (typeof answer.detail === "string") return clip(answer.detail, 500);
  return clip(`HTTP ${status}: ${JSON.stringify(body)}`, 500);
}

/** A1111 / Forge / SD.Next driven through the /sdapi/v1 API (the webui started with --api). */
export class A1111Backend implements GenerationBackend {
  constructor(readonly config: BackendConfig) {}

  check(options: { signal?: AbortSignal } = {}): Promise<BackendCheck> {
    return checkBackend(this, options);
  }

  /** What the webui says about itself: the loaded checkpoint (A1111 has no version route). */
  async version(options: { signal?: AbortSignal } = {}): Promise<string> {
    const settings = (await this.call("/sdapi/v1/options", { signal: options.signal })) as {
      sd_model_checkpoint?: string;
    };
    const loaded = settings?.sd_model_checkpoint;
    return `A1111-compatible API${loaded ? ` (loaded: ${clip(loaded, 80)})` : ""}`;
  }

  async listCheckpoints(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const models = (await this.call("/sdapi/v1/sd-models", { signal: options.signal })) as {
      title?: string;
      model_name?: string;
    }[];
    if (!Array.isArray(models)) throw this.shapeError("/sdapi/v1/sd-models");
    return models
      .map((model) => (model.title ?? model.model_name ?? "").replace(/\s\[[0-9a-f]{8,10}\]$/i, ""))
      .filter(Boolean);
  }

  async listVaes(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const vaes = (await this.call("/sdapi/v1/sd-vae", { signal: options.signal })) as {
      model_name?: string;
    }[];
    if (!Array.isArray(vaes)) throw this.shapeError("/sdapi/v1/sd-vae");
    return vaes.map((vae) => vae.model_name ?? "").filter(Boolean);
  }

  async listSamplers(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const samplers = (await this.call("/sdapi/v1/samplers", { signal: options.signal })) as {
      name?: string;
    }[];
    if (!Array.isArray(samplers)) throw this.shapeError("/sdapi/v1/samplers");
    return samplers.map((sampler) => sampler.name ?? "").filter(Boolean);
  }

  async refreshModels(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.call("/sdapi/v1/refresh-checkpoints", {
      json: {},
      signal: options.signal,
      timeoutMs: 120_000,
    });
    await this.call("/sdapi/v1/refresh-vae", { json: {}, signal: options.signal, timeoutMs: 120_000 });
  }

  checkpointName(fileName: string): string {
    return this.config.modelPrefix ? `${this.config.modelPrefix}/${fileName}` : fileName;
  }

  async generate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GeneratedImage> {
    const payload = buildA1111Payload(request);
    const timeoutMs = this.config.timeoutSeconds * 1000;
    const stopPolling = new AbortController();
    options.onProgress?.({ type: "queued" });
    const polling = this.pollProgress(request.steps, options, stopPolling.signal);
    const onAbort = () => void this.interrupt();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let result: { images?: unknown; info?: unknown };
    try {
      result = (await this.call("/sdapi/v1/txt2img", {
        json: payload,
        signal: options.signal,
        timeoutMs,
        timeoutMessage: `did not finish the image within ${timeoutMs / 1000} s`,
      })) as typeof result;
    } catch (error) {
      if (!options.signal?.aborted) void this.interrupt();
      throw error;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      stopPolling.abort();
      await polling;
    }
    const first = Array.isArray(result?.images) ? result.images[0] : undefined;
    if (typeof first !== "string") {
      throw new GyozaError("network", `${backendLabel(this.config)} answered txt2img without an image`);
    }
    const png = Buffer.from(first.replace(/^data:image\/\w+;base64,/, ""), "base64");
    if (!png.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))) {
      throw new GyozaError("format", `${backendLabel(this.config)} sent an image that is not a PNG`);
    }
    let infotext: string | undefined;
    if (typeof result.info === "string") {
      try {
        const info = JSON.parse(result.info) as { infotexts?: unknown[] };
        if (typeof info?.infotexts?.[0] === "string") infotext = info.infotexts[0];
      } catch {}
    }
    options.onProgress?.({ type: "done" });
    return { png, ...(infotext === undefined ? {} : { infotext }) };
  }

  private async pollProgress(steps: number, options: GenerateOptions, signal: AbortSignal): Promise<void> {
    if (!options.onProgress) return;
    let last = -1;
    while (!signal.aborted) {
      try {
        await sleep(A1111_PROGRESS_POLL_MS, signal);
        const progress = (await this.call("/sdapi/v1/progress?skip_current_image=true", {
          signal,
          timeoutMs: 10_000,
        })) as { state?: { sampling_step?: number; sampling_steps?: number } };
        const step = progress?.state?.sampling_step;
        const total = progress?.state?.sampling_steps || steps;
        if (typeof step === "number" && step !== last && step > 0) {
          last = step;
          if (!signal.aborted)
            options.onProgress({ type: "step", step: Math.min(step, total), totalSteps: total });
        }
      } catch {
        if (signal.aborted) return;
      }
    }
  }

  private async interrupt(): Promise<void> {
    await backendFetch(this.config, "/sdapi/v1/interrupt", { json: {}, timeoutMs: 5000 }).catch(() => {});
  }

  private async call(
    path: string,
    request: {
      json?: unknown;
      signal?: AbortSignal | undefined;
      timeoutMs?: number;
      timeoutMessage?: string;
    },
  ): Promise<unknown> {
    let response: Response;
    try {
      response = await backendFetch(this.config, path, request);
    } catch (error) {
      if (request.timeoutMessage && error instanceof GyozaError && /did not answer/.test(error.message)) {
        throw new GyozaError("network", `${backendLabel(this.config)} ${request.timeoutMessage}`, {
          fix: "raise timeout_seconds for this backend in gyoza.yaml, or check that the webui is not stuck",
          cause: error,
        });
      }
      throw error;
    }
    const body = await readJson(this.config, path.split("?")[0]!, response);
    if (!response.ok) {
      const route = path.split("?")[0]!;
      const words = describeA1111Error(response.status, body);
      if (response.status === 422)
        throw new GyozaError("usage", `${backendLabel(this.config)} refused ${route}: ${words}`);
      if (response.status === 404)
        throw new GyozaError(
          "not-found",
          `${backendLabel(this.config)} answered ${route} with 404: ${words}`,
          {
            fix: "is the webui started with --api? Forge and SD.Next need it too",
          },
        );
      throw new GyozaError(
        "network",
        `${backendLabel(this.config)} failed on ${route} (HTTP ${response.status}): ${words}`,
        {
          fix: "the webui console shows the whole traceback",
        },
      );
    }
    return body;
  }

  private shapeError(path: string): GyozaError {
    return new GyozaError(
      "network",
      `${backendLabel(this.config)} answered ${path} with an unexpected shape`,
    );
  }
}
