/**
 * A local stand-in for a ComfyUI server, part of gyoza's test suite (no GPU needed): a real
 * node:http server plus a `ws` websocket at /ws?clientId=, speaking ComfyUI's API as gyoza's
 * client uses it — POST /prompt (with ComfyUI's validation answers: 400 with node_errors), the
 * websocket message sequence (status, execution_start, execution_cached, executing, progress,
 * binary preview frames, executed, execution_success, executing node=null; execution_error and
 * execution_interrupted on failure), GET /history/{id}, /view, /queue, POST /queue {delete},
 * POST /interrupt, /system_stats and /object_info. Checkpoints, VAEs and LoRAs are listed by
 * reading the folders it is given (as ComfyUI does, live), and each image is a small PNG whose
 * pixels depend on the checkpoint file's bytes, the seed and the prompt, with the API graph in a
 * `prompt` tEXt chunk (and each extra_pnginfo key, e.g. `workflow`, as ComfyUI's SaveImage writes).
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { WebSocket, WebSocketServer } from "ws";
import {
  FaultQueue,
  fileFingerprint,
  INVALID_JSON,
  listModelFiles,
  readRequestJson,
  renderStandinPng,
  type StandinFault,
  sendJson,
  sleepMs,
} from "./standin-common.js";

export const COMFY_STANDIN_SAMPLERS = [
  "euler",
  "euler_ancestral",
  "heun",
  "dpm_2",
  "dpm_2_ancestral",
  "lms",
  "dpm_fast",
  "dpm_adaptive",
  "dpmpp_2s_ancestral",
  "dpmpp_sde",
  "dpmpp_2m",
  "dpmpp_2m_sde",
  "dpmpp_3m_sde",
  "ddpm",
  "lcm",
  "ipndm",
  "deis",
  "euler_cfg_pp",
  "ddim",
  "uni_pc",
];
export const COMFY_STANDIN_SCHEDULERS = [
  "normal",
  "karras",
  "exponential",
  "sgm_uniform",
  "simple",
  "ddim_uniform",
  "beta",
  "kl_optimal",
];

export interface ComfyStandinOptions {
  /** The folder it lists checkpoints from (gyoza's model_folder). */
  modelFolder: string;
  vaeFolder?: string;
  loraFolder?: string;
  /** Wait per sampling step (ms); default 5. */
  stepDelayMs?: number;
  /**
   * Wait per image (ms) before its sampling steps, default 0: a fixed generation time whatever the
   * steps, for the distributed throughput bench (bench/automix-workers.ts). An interrupt ends it.
   */
  imageDelayMs?: number;
  /** Lists checkpoints from an empty folder of its own: a ComfyUI not configured to read modelFolder. */
  cannotSeeFolder?: boolean;
  /** /object_info input lists in the old `[[names]]` shape (default: the newer `["COMBO", {options}]`). */
  legacyObjectInfo?: boolean;
  /** Refuses websocket upgrades (the client must fall back to polling /history). */
  noWebsocket?: boolean;
}

export interface ComfyStandin {
  url: string;
  /** "METHOD /path" of every request, in order (websocket upgrades as "WS /ws"). */
  readonly requests: string[];
  /** Graphs received by POST /prompt (accepted or not). */
  readonly prompts: Record<string, unknown>[];
  /** The next `times` requests (to `path` if given) get `fault`. */
  inject(fault: StandinFault, times?: number, path?: string): void;
  /** The next executed prompt fails in this node with this message (an execution_error). */
  failNextExecution(nodeId: string, message: string): void;
  /** Closes the server and every socket. */
  close(): Promise<void>;
}

interface Job {
  number: number;
  id: string;
  graph: Record<string, { class_type: string; inputs: Record<string, unknown> }>;
  clientId: string | undefined;
  extraPngInfo: Record<string, unknown>;
  interrupted: boolean;
}

const NODE_INPUTS: Record<
  string,
  { required: string[]; combo?: Record<string, "ckpt" | "vae" | "lora" | "sampler" | "scheduler"> }
> = {
  CheckpointLoaderSimple: { required: ["ckpt_name"], combo: { ckpt_name: "ckpt" } },
  VAELoader: { required: ["vae_name"], combo: { vae_name: "vae" } },
  LoraLoader: {
    required: ["model", "clip", "lora_name", "strength_model", "strength_clip"],
    combo: { lora_name: "lora" },
  },
  CLIPSetLastLayer: { required: ["clip", "stop_at_clip_layer"] },
  CLIPTextEncode: { required: ["clip", "text"] },
  EmptyLatentImage: { required: ["width", "height", "batch_size"] },
  KSampler: {
    required: [
      "model",
      "seed",
      "steps",
      "cfg",
      "sampler_name",
      "scheduler",
      "positive",
      "negative",
      "latent_image",
      "denoise",
    ],
    combo: { sampler_name: "sampler", scheduler: "scheduler" },
  },
  VAEDecode: { required: ["samples", "vae"] },
  SaveImage: { required: ["images", "filename_prefix"] },
};

export async function startComfyStandin(options: ComfyStandinOptions): Promise<ComfyStandin> {
  const requests: string[] = [];
  const prompts: Record<string, unknown>[] = [];
  const faults = new FaultQueue();
  const history = new Map<string, Record<string, unknown>>();
  const images = new Map<string, Buffer>();
  const sockets = new Map<string, WebSocket>();
  const pending: Job[] = [];
  let running: Job | undefined;
  let counter = 0;
  let executionFailure: { nodeId: string; message: string } | undefined;
  const emptyFolder = join(options.modelFolder, ".gyoza-standin-empty-does-not-exist");
  const checkpointFolder = options.cannotSeeFolder ? emptyFolder : options.modelFolder;

  const lists = async () => ({
    ckpt: await listModelFiles(checkpointFolder),
    vae: options.vaeFolder ? await listModelFiles(options.vaeFolder) : [],
    lora: options.loraFolder ? await listModelFiles(options.loraFolder) : [],
    sampler: COMFY_STANDIN_SAMPLERS,
    scheduler: COMFY_STANDIN_SCHEDULERS,
  });

  const combo = (names: string[]) => (options.legacyObjectInfo ? [names, {}] : ["COMBO", { options: names }]);
  const objectInfo = async (): Promise<Record<string, unknown>> => {
    const l = await lists();
    const node = (required: Record<string, unknown>, output: string[]) => ({
      input: { required },
      output,
      category: "stand-in",
    });
    return {
      CheckpointLoaderSimple: node({ ckpt_name: combo(l.ckpt) }, ["MODEL", "CLIP", "VAE"]),
      VAELoader: node({ vae_name: combo(l.vae) }, ["VAE"]),
      LoraLoader: node(
        {
          model: ["MODEL"],
          clip: ["CLIP"],
          lora_name: combo(l.lora),
          strength_model: ["FLOAT", {}],
          strength_clip: ["FLOAT", {}],
        },
        ["MODEL", "CLIP"],
      ),
      CLIPSetLastLayer: node(
        { clip: ["CLIP"], stop_at_clip_layer: ["INT", { default: -1, min: -24, max: -1 }] },
        ["CLIP"],
      ),
      CLIPTextEncode: node({ text: ["STRING", { multiline: true }], clip: ["CLIP"] }, ["CONDITIONING"]),
      EmptyLatentImage: node({ width: ["INT", {}], height: ["INT", {}], batch_size: ["INT", {}] }, [
        "LATENT",
      ]),
      KSampler: node(
        {
          model: ["MODEL"],
          seed: ["INT", {}],
          steps: ["INT", {}],
          cfg: ["FLOAT", {}],
          sampler_name: combo(l.sampler),
          scheduler: combo(l.scheduler),
          positive: ["CONDITIONING"],
          negative: ["CONDITIONING"],
          latent_image: ["LATENT"],
          denoise: ["FLOAT", {}],
        },
        ["LATENT"],
      ),
      VAEDecode: node({ samples: ["LATENT"], vae: ["VAE"] }, ["IMAGE"]),
      SaveImage: node({ images: ["IMAGE"], filename_prefix: ["STRING", {}] }, []),
    };
  };

  const send = (clientId: string | undefined, type: string, data: unknown) => {
    const text = JSON.stringify({ type, data });
    if (clientId === undefined) {
      for (const socket of sockets.values()) if (socket.readyState === WebSocket.OPEN) socket.send(text);
    } else {
      const socket = sockets.get(clientId);
      if (socket?.readyState === WebSocket.OPEN) socket.send(text);
    }
  };
  const queueStatus = () => ({
    status: { exec_info: { queue_remaining: pending.length + (running ? 1 : 0) } },
  });

  /** ComfyUI's validation: unknown classes, missing inputs, values not in the lists. */
  const validate = async (graph: unknown): Promise<{ status: number; body: unknown } | undefined> => {
    if (!graph || typeof graph !== "object" || Array.isArray(graph)) {
      return {
        status: 400,
        body: {
          error: { type: "invalid_prompt", message: "Invalid prompt", details: "no prompt", extra_info: {} },
          node_errors: [],
        },
      };
    }
    const nodes = graph as Record<string, { class_type?: unknown; inputs?: Record<string, unknown> }>;
    for (const [id, node] of Object.entries(nodes)) {
      if (typeof node?.class_type !== "string" || !(node.class_type in NODE_INPUTS)) {
        return {
          status: 400,
          body: {
            error: {
              type: "invalid_prompt",
              message: `Cannot execute because node ${String(node?.class_type)} does not exist.`,
              details: `Node ID '#${id}'`,
              extra_info: {},
            },
            node_errors: {},
          },
        };
      }
    }
    if (!Object.values(nodes).some((node) => node.class_type === "SaveImage")) {
      return {
        status: 400,
        body: {
          error: { type: "prompt_no_outputs", message: "Prompt has no outputs", details: "", extra_info: {} },
          node_errors: [],
        },
      };
    }
    const l = await lists();
    const nodeErrors: Record<string, unknown> = {};
    for (const [id, node] of Object.entries(nodes)) {
      const spec = NODE_INPUTS[node.class_type as string]!;
      const errors: unknown[] = [];
      for (const input of spec.required) {
        const value = node.inputs?.[input];
        if (value === undefined) {
          errors.push({
            type: "required_input_missing",
            message: "Required input is missing",
            details: input,
            extra_info: { input_name: input },
          });
          continue;
        }
        const list = spec.combo?.[input];
        if (list && !l[list].includes(value as string)) {
          errors.push({
            type: "value_not_in_list",
            message: "Value not in list",
            details: `${input}: '${String(value)}' not in ${JSON.stringify(l[list])}`,
            extra_info: { input_name: input, input_config: null, received_value: value },
          });
        }
      }
      if (errors.length > 0)
        nodeErrors[id] = { errors, dependent_outputs: ["9"], class_type: node.class_type };
    }
    if (Object.keys(nodeErrors).length > 0) {
      return {
        status: 400,
        body: {
          error: {
            type: "prompt_outputs_failed_validation",
            message: "Prompt outputs failed validation",
            details: "",
            extra_info: {},
          },
          node_errors: nodeErrors,
        },
      };
    }
    return undefined;
  };

  const runJob = async (job: Job): Promise<void> => {
    const messages: [string, unknown][] = [];
    const emit = (type: string, data: Record<string, unknown>) => {
      if (type !== "executing" && type !== "progress") messages.push([type, data]);
      send(job.clientId, type, data);
    };
    send(undefined, "status", queueStatus());
    emit("execution_start", { prompt_id: job.id, timestamp: Date.now() });
    emit("execution_cached", { nodes: [], prompt_id: job.id, timestamp: Date.now() });
    const order = Object.keys(job.graph).sort((a, b) => Number(a) - Number(b));
    const executed: string[] = [];
    const failure = executionFailure;
    executionFailure = undefined;
    const outputs: Record<string, unknown> = {};
    const sampler = Object.entries(job.graph).find(([, node]) => node.class_type === "KSampler");
    const ordered = [
      ...order.filter((id) => !["KSampler", "VAEDecode", "SaveImage"].includes(job.graph[id]!.class_type)),
      ...order.filter((id) => job.graph[id]!.class_type === "KSampler"),
      ...order.filter((id) => job.graph[id]!.class_type === "VAEDecode"),
      ...order.filter((id) => job.graph[id]!.class_type === "SaveImage"),
    ];
    for (const id of ordered) {
      const node = job.graph[id]!;
      emit("executing", { node: id, display_node: id, prompt_id: job.id });
      if (failure && failure.nodeId === id) {
        emit("execution_error", {
          prompt_id: job.id,
          node_id: id,
          node_type: node.class_type,
          executed,
          exception_message: failure.message,
          exception_type: "RuntimeError",
          traceback: ["Traceback (most recent call last):\n", `RuntimeError: ${failure.message}\n`],
          current_inputs: {},
          current_outputs: {},
          timestamp: Date.now(),
        });
        history.set(job.id, {
          prompt: [job.number, job.id, job.graph, { client_id: job.clientId }, ["9"]],
          outputs: {},
          status: { status_str: "error", completed: false, messages },
          meta: {},
        });
        return;
      }
      if (node.class_type === "KSampler") {
        // the stand-in renders one image per prompt (SaveImage below)
        const until = Date.now() + (options.imageDelayMs ?? 0);
        while (Date.now() < until && !job.interrupted) await sleepMs(Math.min(20, until - Date.now()));
        const steps = Number(node.inputs.steps);
        for (let step = 1; step <= steps; step++) {
          await sleepMs(options.stepDelayMs ?? 5);
          if (job.interrupted) {
            emit("execution_interrupted", {
              prompt_id: job.id,
              node_id: id,
              node_type: node.class_type,
              executed,
              timestamp: Date.now(),
            });
            history.set(job.id, {
              prompt: [job.number, job.id, job.graph, { client_id: job.clientId }, ["9"]],
              outputs: {},
              status: { status_str: "error", completed: false, messages },
              meta: {},
            });
            return;
          }
          send(job.clientId, "progress", { value: step, max: steps, prompt_id: job.id, node: id });
          // a preview frame: event type 1 (PREVIEW_IMAGE), image type 2 (PNG), then bytes
          const socket = job.clientId ? sockets.get(job.clientId) : undefined;
          if (socket?.readyState === WebSocket.OPEN)
            socket.send(Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), Buffer.from("preview")]), {
              binary: true,
            });
        }
      }
      if (node.class_type === "SaveImage") {
        const graph = job.graph;
        const inputsOf = (classType: string) =>
          Object.values(graph).find((candidate) => candidate.class_type === classType)?.inputs ?? {};
        const ckpt = String(inputsOf("CheckpointLoaderSimple").ckpt_name);
        const vaeName = inputsOf("VAELoader").vae_name as string | undefined;
        const texts = Object.values(graph)
          .filter((candidate) => candidate.class_type === "CLIPTextEncode")
          .map((candidate) => String(candidate.inputs.text));
        const latent = inputsOf("EmptyLatentImage");
        const sample = sampler?.[1].inputs ?? {};
        const pngTexts: Record<string, string> = { prompt: JSON.stringify(graph) };
        for (const [key, value] of Object.entries(job.extraPngInfo)) pngTexts[key] = JSON.stringify(value);
        const png = await renderStandinPng({
          checkpoint: await fileFingerprint(join(checkpointFolder, ckpt)),
          vae:
            vaeName && options.vaeFolder
              ? await fileFingerprint(join(options.vaeFolder, vaeName))
              : undefined,
          seed: Number(sample.seed),
          prompt: `${texts[0] ?? ""}|cfg=${String(sample.cfg)}|${String(sample.sampler_name)}|steps=${String(sample.steps)}`,
          width: Number(latent.width),
          height: Number(latent.height),
          texts: pngTexts,
        });
        const filename = `${String(node.inputs.filename_prefix)}_${String(++counter).padStart(5, "0")}_.png`;
        images.set(filename, png);
        const output = { images: [{ filename, subfolder: "", type: "output" }] };
        outputs[id] = output;
        emit("executed", { node: id, display_node: id, output, prompt_id: job.id });
      }
      executed.push(id);
    }
    emit("execution_success", { prompt_id: job.id, timestamp: Date.now() });
    history.set(job.id, {
      prompt: [job.number, job.id, job.graph, { client_id: job.clientId }, ["9"]],
      outputs,
      status: { status_str: "success", completed: true, messages },
      meta: {},
    });
  };

  let worker: Promise<void> | undefined;
  const pump = () => {
    if (worker) return;
    worker = (async () => {
      for (let job = pending.shift(); job; job = pending.shift()) {
        running = job;
        try {
          await runJob(job);
        } catch (error) {
          history.set(job.id, {
            prompt: [job.number, job.id, job.graph, {}, ["9"]],
            outputs: {},
            status: {
              status_str: "error",
              completed: false,
              messages: [
                [
                  "execution_error",
                  {
                    prompt_id: job.id,
                    node_id: "9",
                    node_type: "SaveImage",
                    exception_message: String(error),
                    exception_type: "Exception",
                  },
                ],
              ],
            },
          });
        }
        running = undefined;
        // ComfyUI's prompt worker says "nothing executing" after every prompt, however it ended
        send(job.clientId, "executing", { node: null, prompt_id: job.id });
        send(undefined, "status", queueStatus());
      }
      worker = undefined;
    })();
  };

  const server: Server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? "/", "http://standin");
      const path = url.pathname;
      requests.push(`${request.method} ${path}`);
      if (await faults.apply(path, response)) return;
      if (request.method === "GET" && path === "/system_stats") {
        sendJson(response, 200, {
          system: {
            os: "posix",
            comfyui_version: "0.3.40 (gyoza stand-in)",
            python_version: "3.12.0",
            embedded_python: false,
            argv: ["main.py"],
          },
          devices: [
            { name: "gyoza stand-in (no GPU)", type: "cpu", index: null, vram_total: 0, vram_free: 0 },
          ],
        });
      } else if (request.method === "GET" && path === "/object_info") {
        sendJson(response, 200, await objectInfo());
      } else if (request.method === "GET" && path.startsWith("/object_info/")) {
        const info = await objectInfo();
        const name = decodeURIComponent(path.slice("/object_info/".length));
        sendJson(response, 200, name in info ? { [name]: info[name] } : {});
      } else if (request.method === "POST" && path === "/prompt") {
        const body = await readRequestJson(request);
        if (body === INVALID_JSON || !body || typeof body !== "object") {
          response.writeHead(400, { "content-type": "text/plain" });
          response.end("400: Bad Request");
          return;
        }
        const { prompt, client_id, extra_data } = body as {
          prompt?: unknown;
          client_id?: string;
          extra_data?: { extra_pnginfo?: Record<string, unknown> };
        };
        prompts.push(prompt as Record<string, unknown>);
        const refusal = await validate(prompt);
        if (refusal) {
          sendJson(response, refusal.status, refusal.body);
          return;
        }
        const job: Job = {
          number: ++counter,
          id: randomUUID(),
          graph: prompt as Job["graph"],
          clientId: client_id,
          extraPngInfo: extra_data?.extra_pnginfo ?? {},
          interrupted: false,
        };
        pending.push(job);
        sendJson(response, 200, { prompt_id: job.id, number: job.number, node_errors: {} });
        send(undefined, "status", queueStatus());
        pump();
      } else if (request.method === "GET" && path.startsWith("/history/")) {
        const id = decodeURIComponent(path.slice("/history/".length));
        const entry = history.get(id);
        sendJson(response, 200, entry ? { [id]: entry } : {});
      } else if (request.method === "GET" && path === "/view") {
        const png = images.get(url.searchParams.get("filename") ?? "");
        if (!png || url.searchParams.get("type") !== "output") {
          response.writeHead(404);
          response.end();
          return;
        }
        response.writeHead(200, { "content-type": "image/png", "content-length": png.length });
        response.end(png);
      } else if (request.method === "GET" && path === "/queue") {
        const entry = (job: Job) => [job.number, job.id, job.graph, { client_id: job.clientId }, ["9"]];
        sendJson(response, 200, {
          queue_running: running ? [entry(running)] : [],
          queue_pending: pending.map(entry),
        });
      } else if (request.method === "POST" && path === "/queue") {
        const body = (await readRequestJson(request)) as { delete?: string[]; clear?: boolean } | undefined;
        for (const id of body?.delete ?? []) {
          const index = pending.findIndex((job) => job.id === id);
          if (index >= 0) pending.splice(index, 1);
        }
        if (body?.clear) pending.length = 0;
        response.writeHead(200);
        response.end();
      } else if (request.method === "POST" && path === "/interrupt") {
        const body = (await readRequestJson(request)) as { prompt_id?: string } | undefined;
        if (
          running &&
          (!body || typeof body !== "object" || !body.prompt_id || body.prompt_id === running.id)
        )
          running.interrupted = true;
        response.writeHead(200);
        response.end();
      } else {
        response.writeHead(404, { "content-type": "text/plain" });
        response.end("404: Not Found");
      }
    })().catch((error) => {
      if (!response.headersSent) sendJson(response, 500, { error: String(error) });
      else response.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (request, socket, head) => {
    const url = new URL(request.url ?? "/", "http://standin");
    requests.push(`WS ${url.pathname}`);
    if (options.noWebsocket || url.pathname !== "/ws") {
      socket.end("HTTP/1.1 404 Not Found\r\n\r\n");
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const clientId = url.searchParams.get("clientId") ?? randomUUID().replace(/-/g, "");
      sockets.set(clientId, ws);
      ws.on("close", () => {
        if (sockets.get(clientId) === ws) sockets.delete(clientId);
      });
      ws.send(JSON.stringify({ type: "status", data: { ...queueStatus(), sid: clientId } }));
    });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    prompts,
    inject: (fault, times, path) => faults.inject(fault, times, path),
    failNextExecution: (nodeId, message) => {
      executionFailure = { nodeId, message };
    },
    close: async () => {
      for (const job of pending) job.interrupted = true;
      if (running) running.interrupted = true;
      for (const socket of sockets.values()) socket.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await worker?.catch(() => {});
    },
  };
}
