import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { GyozaError } from "../errors.js";
import { checkBackend } from "./check.js";
import { buildComfyWorkflow } from "./comfyui-workflow.js";
import { backendFetch, backendLabel, clip, readBody, readJson, sleep } from "./http.js";
import { comfySamplerFor } from "./samplers.js";
import type {
  BackendCheck,
  BackendConfig,
  GeneratedImage,
  GenerateOptions,
  GenerateRequest,
  GenerationBackend,
} from "./types.js";

/** One node of ComfyUI's API-format graph. */
export interface ComfyNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title: string };
}
export type ComfyGraph = Record<string, ComfyNode>;

/** The SaveImage node's id in graphs gyoza builds (its output holds the image). */
export const COMFY_SAVE_NODE = "9";

/**
 * The API-format graph for one txt2img image: CheckpointLoaderSimple → (LoraLoader …) →
 * CLIPSetLastLayer(−clip skip) → CLIPTextEncode ×2 → EmptyLatentImage → KSampler → VAEDecode
 * (VAELoader's VAE when one is named) → SaveImage.
 */
export function buildComfyGraph(request: GenerateRequest): ComfyGraph {
  const { sampler, scheduler } = comfySamplerFor(request.sampler, request.scheduler);
  const graph: ComfyGraph = {
    "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: request.checkpoint } },
  };
  let model: [string, number] = ["1", 0];
  let clip: [string, number] = ["1", 1];
  (request.loras ?? []).forEach((lora, index) => {
    const id = String(20 + index);
    graph[id] = {
      class_type: "LoraLoader",
      inputs: {
        model,
        clip,
        lora_name: lora.name,
        strength_model: lora.strength,
        strength_clip: lora.strength,
      },
    };
    model = [id, 0];
    clip = [id, 1];
  });
  graph["2"] = {
    class_type: "CLIPSetLastLayer",
    inputs: { clip, stop_at_clip_layer: -Math.max(1, Math.trunc(request.clipSkip)) },
  };
  graph["3"] = { class_type: "CLIPTextEncode", inputs: { clip: ["2", 0], text: request.prompt } };
  graph["4"] = { class_type: "CLIPTextEncode", inputs: { clip: ["2", 0], text: request.negativePrompt } };
  graph["5"] = {
    class_type: "EmptyLatentImage",
    inputs: { width: request.width, height: request.height, batch_size: 1 },
  };
  graph["6"] = {
    class_type: "KSampler",
    inputs: {
      model,
      positive: ["3", 0],
      negative: ["4", 0],
      latent_image: ["5", 0],
      seed: request.seed,
      steps: request.steps,
      cfg: request.cfg,
      sampler_name: sampler,
      scheduler,
      denoise: 1,
    },
  };
  let vae: [string, number] = ["1", 2];
  if (request.vae) {
    graph["8"] = { class_type: "VAELoader", inputs: { vae_name: request.vae } };
    vae = ["8", 0];
  }
  graph["7"] = { class_type: "VAEDecode", inputs: { samples: ["6", 0], vae } };
  graph[COMFY_SAVE_NODE] = {
    class_type: "SaveImage",
    inputs: { images: ["7", 0], filename_prefix: "gyoza" },
  };
  return graph;
}

/**
 * The option list of one input in an /object_info answer: the old shape `[[names…], {…}]` and
 * the newer `["COMBO", {options: [names…]}]` both.
 */
export function comboOptions(objectInfo: unknown, nodeClass: string, input: string): string[] | undefined {
  const node = (objectInfo as Record<string, unknown> | null)?.[nodeClass] as
    | { input?: { required?: Record<string, unknown>; optional?: Record<string, unknown> } }
    | undefined;
  const spec = node?.input?.required?.[input] ?? node?.input?.optional?.[input];
  if (!Array.isArray(spec)) return undefined;
  const [first, second] = spec as [unknown, unknown];
  const list = Array.isArray(first)
    ? first
    : first === "COMBO" && second && typeof second === "object"
      ? (second as { options?: unknown }).options
      : undefined;
  return Array.isArray(list) ? list.filter((item): item is string => typeof item === "string") : undefined;
}

/** ComfyUI's 400 answer to a graph it refuses, in the user's terms: which node, which input, why. */
export function describeComfyRefusal(body: unknown, graph: ComfyGraph): string {
  const answer = (body ?? {}) as {
    error?: { type?: string; message?: string; details?: string } | string;
    node_errors?: Record<
      string,
      {
        class_type?: string;
        errors?: {
          type?: string;
          message?: string;
          details?: string;
          extra_info?: { input_name?: string };
        }[];
      }
    >;
  };
  const lines: string[] = [];
  for (const [nodeId, nodeError] of Object.entries(answer.node_errors ?? {})) {
    const classType = nodeError?.class_type ?? graph[nodeId]?.class_type ?? "?";
    for (const error of nodeError?.errors ?? []) {
      const input = error.extra_info?.input_name;
      const why = [error.message, error.details].filter(Boolean).join(": ");
      lines.push(`node ${nodeId} (${classType})${input ? ` input '${input}'` : ""}: ${clip(why, 400)}`);
    }
  }
  if (lines.length === 0) {
    const error = answer.error;
    const text =
      typeof error === "string"
        ? error
        : [error?.message, error?.details].filter(Boolean).join(": ") || JSON.stringify(body);
    lines.push(clip(text, 400));
  }
  return lines.join("; ");
}

interface ComfyMessage {
  type?: string;
  data?: Record<string, unknown>;
}

/** A ComfyUI server driven through its HTTP API and progress websocket. */
export class ComfyUIBackend implements GenerationBackend {
  constructor(readonly config: BackendConfig) {}

  check(options: { signal?: AbortSignal } = {}): Promise<BackendCheck> {
    return checkBackend(this, options);
  }

  /** ComfyUI's version ("0.3.40") and first device, from /system_stats. */
  async version(options: { signal?: AbortSignal } = {}): Promise<string> {
    const stats = (await this.getJson("/system_stats", options.signal)) as {
      system?: { comfyui_version?: string; python_version?: string };
      devices?: { name?: string }[];
    };
    const version = stats?.system?.comfyui_version ?? "version unknown";
    const device = stats?.devices?.[0]?.name;
    return device ? `ComfyUI ${version} on ${clip(device, 80)}` : `ComfyUI ${version}`;
  }

  async listCheckpoints(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    return this.objectInfoOptions("CheckpointLoaderSimple", "ckpt_name", options.signal);
  }

  async listVaes(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    return this.objectInfoOptions("VAELoader", "vae_name", options.signal);
  }

  async listSamplers(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    return this.objectInfoOptions("KSampler", "sampler_name", options.signal);
  }

  /** ComfyUI re-reads its model folders when they change (each /object_info call checks). */
  async refreshModels(): Promise<void> {}

  checkpointName(fileName: string): string {
    return this.config.modelPrefix ? `${this.config.modelPrefix}/${fileName}` : fileName;
  }

  async generate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GeneratedImage> {
    const graph = buildComfyGraph(request);
    const clientId = randomUUID();
    const timeoutMs = this.config.timeoutSeconds * 1000;
    const deadline = AbortSignal.timeout(timeoutMs);
    const socket = await this.openSocket(clientId, options.signal).catch(() => undefined);
    try {
      const promptId = await this.queuePrompt(graph, clientId, options.signal);
      options.onProgress?.({ type: "queued" });
      await this.waitForPrompt(promptId, graph, socket, options, deadline, timeoutMs);
      const png = await this.fetchImage(promptId, options.signal);
      options.onProgress?.({ type: "done" });
      return { png, comfyPrompt: graph as Record<string, unknown>, backendJobId: promptId };
    } finally {
      socket?.removeAllListeners("message");
      socket?.on("error", () => {});
      socket?.close();
    }
  }

  private async objectInfoOptions(nodeClass: string, input: string, signal?: AbortSignal): Promise<string[]> {
    const info = await this.getJson(`/object_info/${nodeClass}`, signal);
    const options = comboOptions(info, nodeClass, input);
    if (!options) {
      throw new GyozaError(
        "network",
        `${backendLabel(this.config)}: /object_info/${nodeClass} has no list for '${input}' (is the node missing?)`,
      );
    }
    return options;
  }

  private async getJson(path: string, signal?: AbortSignal): Promise<unknown> {
    const response = await backendFetch(this.config, path, { signal });
    const body = await readJson(this.config, path, response);
    if (!response.ok) {
      throw new GyozaError(
        response.status === 404 ? "not-found" : "network",
        `${backendLabel(this.config)} answered ${path} with HTTP ${response.status}: ${clip(JSON.stringify(body), 300)}`,
      );
    }
    return body;
  }

  private openSocket(clientId: string, signal?: AbortSignal): Promise<WebSocket> {
    const url = `${this.config.url.replace(/^http/, "ws")}/ws?clientId=${encodeURIComponent(clientId)}`;
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers: this.config.headers, handshakeTimeout: 10_000 });
      const fail = (error: unknown) => {
        socket.removeAllListeners();
        socket.on("error", () => {});
        socket.terminate();
        reject(error);
      };
      socket.once("open", () => {
        socket.removeListener("error", fail);
        signal?.removeEventListener("abort", onAbort);
        socket.on("error", () => {}); // a broken socket later: polling /history carries on
        resolve(socket);
      });
      socket.once("error", fail);
      const onAbort = () => fail(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private async queuePrompt(graph: ComfyGraph, clientId: string, signal?: AbortSignal): Promise<string> {
    const response = await backendFetch(this.config, "/prompt", {
      // the UI graph rides in extra_pnginfo, as ComfyUI's front end sends it: SaveImage writes it as
      // the `workflow` chunk, so the image loads back into ComfyUI's canvas
      json: {
        prompt: graph,
        client_id: clientId,
        extra_data: { extra_pnginfo: { workflow: buildComfyWorkflow(graph) } },
      },
      signal,
    });
    const body = await readJson(this.config, "/prompt", response);
    if (response.status === 400) {
      throw new GyozaError(
        "usage",
        `${backendLabel(this.config)} refused the graph: ${describeComfyRefusal(body, graph)}`,
        {
          fix: "check the checkpoint, VAE, LoRA and sampler names against `gyoza backend check`",
        },
      );
    }
    const promptId = (body as { prompt_id?: unknown })?.prompt_id;
    if (!response.ok || typeof promptId !== "string") {
      throw new GyozaError(
        "network",
        `${backendLabel(this.config)} did not queue the graph (HTTP ${response.status}): ${clip(JSON.stringify(body), 300)}`,
      );
    }
    return promptId;
  }

  /** Resolves once ComfyUI says the prompt is done; rejects on its error, a timeout or an abort. */
  private waitForPrompt(
    promptId: string,
    graph: ComfyGraph,
    socket: WebSocket | undefined,
    options: GenerateOptions,
    deadline: AbortSignal,
    timeoutMs: number,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const stopPolling = new AbortController();
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        stopPolling.abort();
        options.signal?.removeEventListener("abort", onAbort);
        deadline.removeEventListener("abort", onTimeout);
        socket?.removeListener("message", onMessage);
        socket?.removeListener("close", onClose);
        if (error) reject(error);
        else resolve();
      };
      const cancelThen = (error: GyozaError) => {
        const cancelled = this.cancel(promptId).catch(() => {});
        void cancelled.then(() => finish(error));
      };
      const onAbort = () =>
        cancelThen(
          new GyozaError(
            "interrupted",
            `stopped: ${backendLabel(this.config)} was asked to drop prompt ${promptId}`,
            {
              cause: options.signal?.reason,
            },
          ),
        );
      const onTimeout = () =>
        cancelThen(
          new GyozaError(
            "network",
            `${backendLabel(this.config)} did not finish the image within ${timeoutMs / 1000} s (prompt ${promptId} dropped)`,
            {
              fix: "raise timeout_seconds for this backend in gyoza.yaml, or check that ComfyUI is not stuck",
            },
          ),
        );
      const onMessage = (data: WebSocket.RawData, isBinary: boolean) => {
        if (isBinary) return; // preview frames
        let message: ComfyMessage;
        try {
          message = JSON.parse(data.toString()) as ComfyMessage;
        } catch {
          return;
        }
        const payload = message.data ?? {};
        const forUs = payload.prompt_id === undefined || payload.prompt_id === promptId;
        switch (message.type) {
          case "status": {
            const remaining = (payload.status as { exec_info?: { queue_remaining?: number } } | undefined)
              ?.exec_info?.queue_remaining;
            if (typeof remaining === "number") options.onProgress?.({ type: "queued", position: remaining });
            break;
          }
          case "progress":
            if (forUs && typeof payload.value === "number" && typeof payload.max === "number")
              options.onProgress?.({ type: "step", step: payload.value, totalSteps: payload.max });
            break;
          case "executing":
            if (payload.prompt_id === promptId && payload.node === null) finish();
            break;
          case "execution_success":
            if (payload.prompt_id === promptId) finish();
            break;
          case "execution_error":
            if (payload.prompt_id === promptId) finish(this.executionError(payload, graph, promptId));
            break;
          case "execution_interrupted":
            if (payload.prompt_id === promptId)
              finish(
                new GyozaError("interrupted", `${backendLabel(this.config)} interrupted prompt ${promptId}`),
              );
            break;
        }
      };
      const onClose = () => void this.pollHistory(promptId, graph, 500, stopPolling.signal, finish);
      if (options.signal?.aborted) {
        onAbort();
        return;
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
      deadline.addEventListener("abort", onTimeout, { once: true });
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.on("message", onMessage);
        socket.once("close", onClose);
        // a safety net: a message lost on the way still ends the wait
        void this.pollHistory(promptId, graph, 3000, stopPolling.signal, finish);
      } else {
        void this.pollHistory(promptId, graph, 500, stopPolling.signal, finish);
      }
    });
  }

  /** Polls /history/{id} until the prompt shows up finished (no websocket, or the socket dropped). */
  private async pollHistory(
    promptId: string,
    graph: ComfyGraph,
    everyMs: number,
    signal: AbortSignal,
    finish: (error?: unknown) => void,
  ): Promise<void> {
    while (!signal.aborted) {
      try {
        await sleep(everyMs, signal);
      } catch {
        return;
      }
      try {
        const entry = await this.historyEntry(promptId, signal);
        if (!entry) continue;
        const status = entry.status;
        if (status?.status_str === "error") {
          const error = status.messages?.find((message) => message[0] === "execution_error")?.[1];
          finish(
            error
              ? this.executionError(error as Record<string, unknown>, graph, promptId)
              : new GyozaError("network", `${backendLabel(this.config)} reports prompt ${promptId} failed`),
          );
          return;
        }
        if (status?.completed || status?.status_str === "success" || (!status && entry.outputs)) {
          finish();
          return;
        }
      } catch (error) {
        if (signal.aborted) return;
        finish(error);
        return;
      }
    }
  }

  private async historyEntry(
    promptId: string,
    signal?: AbortSignal,
  ): Promise<
    | {
        outputs?: Record<string, { images?: { filename?: string; subfolder?: string; type?: string }[] }>;
        status?: { status_str?: string; completed?: boolean; messages?: [string, unknown][] };
      }
    | undefined
  > {
    const history = (await this.getJson(`/history/${encodeURIComponent(promptId)}`, signal)) as Record<
      string,
      unknown
    >;
    return history?.[promptId] as never;
  }

  private executionError(payload: Record<string, unknown>, graph: ComfyGraph, promptId: string): GyozaError {
    const nodeId = String(payload.node_id ?? "?");
    const nodeType = String(payload.node_type ?? graph[nodeId]?.class_type ?? "?");
    const what = [payload.exception_type, payload.exception_message].filter(Boolean).join(": ");
    return new GyozaError(
      "network",
      `${backendLabel(this.config)} failed in node ${nodeId} (${nodeType}) on prompt ${promptId}: ${clip(what || "no message", 500)}`,
      { fix: "the ComfyUI console shows the whole traceback" },
    );
  }

  private async fetchImage(promptId: string, signal?: AbortSignal): Promise<Buffer> {
    const entry = await this.historyEntry(promptId, signal);
    const images =
      entry?.outputs?.[COMFY_SAVE_NODE]?.images ?? Object.values(entry?.outputs ?? {})[0]?.images;
    const image = images?.[0];
    if (!image?.filename) {
      throw new GyozaError(
        "network",
        `${backendLabel(this.config)} finished prompt ${promptId} but its history lists no image`,
      );
    }
    const query = new URLSearchParams({
      filename: image.filename,
      subfolder: image.subfolder ?? "",
      type: image.type ?? "output",
    });
    const path = `/view?${query}`;
    const response = await backendFetch(this.config, path, { signal });
    const bytes = await readBody(this.config, path, response);
    if (!response.ok) {
      throw new GyozaError(
        "network",
        `${backendLabel(this.config)} answered ${path} with HTTP ${response.status}`,
      );
    }
    if (bytes.length < 8 || !bytes.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))) {
      throw new GyozaError(
        "format",
        `${backendLabel(this.config)} sent an image that is not a PNG (${path})`,
      );
    }
    return bytes;
  }

  /** Drops our prompt: interrupts it if it is running, deletes it from the queue if it waits. */
  async cancel(promptId: string): Promise<void> {
    const timeoutMs = 5000;
    try {
      const response = await backendFetch(this.config, "/queue", { timeoutMs });
      const queue = (await readJson(this.config, "/queue", response)) as { queue_running?: unknown[][] };
      const running = (queue?.queue_running ?? []).some(
        (item) => Array.isArray(item) && item[1] === promptId,
      );
      if (running)
        await backendFetch(this.config, "/interrupt", { json: { prompt_id: promptId }, timeoutMs });
    } catch {}
    await backendFetch(this.config, "/queue", { json: { delete: [promptId] }, timeoutMs }).catch(() => {});
  }
}
