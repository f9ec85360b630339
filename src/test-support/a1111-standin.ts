/**
 * A local stand-in for an A1111 / Forge webui started with --api, part of gyoza's test suite (no
 * GPU needed): a real node:http server answering the /sdapi/v1 routes gyoza's client uses —
 * txt2img (one image at a time, as the webui's queue lock does; base64 PNG with a `parameters`
 * infotext chunk; `info` as a JSON string with `infotexts`), sd-models, sd-vae, samplers,
 * schedulers, options, refresh-checkpoints, refresh-vae, progress, interrupt — with the webui's
 * error bodies: 422 `{detail: [{loc, msg, type}]}` for a body of the wrong shape, 404
 * `{detail: "Sampler not found"}`, 500 `{error, detail, body, errors}`. Like the webui, it lists
 * the checkpoints of its folder as they were at start or at the last refresh-checkpoints.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
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

export const A1111_STANDIN_SAMPLERS = [
  "DPM++ 2M",
  "DPM++ SDE",
  "DPM++ 2M SDE",
  "DPM++ 3M SDE",
  "Euler a",
  "Euler",
  "LMS",
  "Heun",
  "DPM2",
  "DPM2 a",
  "DPM++ 2S a",
  "DPM fast",
  "DPM adaptive",
  "DDIM",
  "UniPC",
  "LCM",
];
export const A1111_STANDIN_SCHEDULERS = [
  "Automatic",
  "Uniform",
  "Karras",
  "Exponential",
  "Polyexponential",
  "SGM Uniform",
  "KL Optimal",
  "Align Your Steps",
  "Simple",
  "Normal",
  "DDIM",
  "Beta",
];

export interface A1111StandinOptions {
  /** The folder it lists checkpoints from (its --ckpt-dir). */
  modelFolder: string;
  vaeFolder?: string;
  /** Wait per sampling step (ms); default 5. */
  stepDelayMs?: number;
  /** Lists checkpoints from an empty folder of its own: a webui not started with --ckpt-dir modelFolder. */
  cannotSeeFolder?: boolean;
}

export interface A1111Standin {
  url: string;
  /** "METHOD /path" of every request, in order. */
  readonly requests: string[];
  /** txt2img bodies received. */
  readonly txt2img: Record<string, unknown>[];
  inject(fault: StandinFault, times?: number, path?: string): void;
  close(): Promise<void>;
}

const FIELD_TYPES: Record<string, "int" | "float" | "str" | "bool" | "dict"> = {
  prompt: "str",
  negative_prompt: "str",
  seed: "int",
  steps: "int",
  cfg_scale: "float",
  sampler_name: "str",
  scheduler: "str",
  width: "int",
  height: "int",
  batch_size: "int",
  n_iter: "int",
  override_settings: "dict",
  override_settings_restore_afterwards: "bool",
  send_images: "bool",
  save_images: "bool",
};

export async function startA1111Standin(options: A1111StandinOptions): Promise<A1111Standin> {
  const requests: string[] = [];
  const txt2img: Record<string, unknown>[] = [];
  const faults = new FaultQueue();
  const checkpointFolder = options.cannotSeeFolder
    ? join(options.modelFolder, ".gyoza-standin-empty-does-not-exist")
    : options.modelFolder;
  let checkpoints = await listModelFiles(checkpointFolder);
  let vaes = options.vaeFolder ? await listModelFiles(options.vaeFolder) : [];
  const settings: Record<string, unknown> = {
    sd_model_checkpoint: checkpoints[0] ?? null,
    sd_vae: "Automatic",
    CLIP_stop_at_last_layers: 1,
  };
  const state = { sampling_step: 0, sampling_steps: 0, job_count: 0, interrupted: false, job: "" };
  let lock: Promise<void> = Promise.resolve();

  const generate = async (body: Record<string, unknown>): Promise<{ status: number; body: unknown }> => {
    const override = (body.override_settings ?? {}) as Record<string, unknown>;
    const sampler = String(body.sampler_name ?? "Euler");
    if (!A1111_STANDIN_SAMPLERS.includes(sampler))
      return { status: 404, body: { detail: "Sampler not found" } };
    const wanted = String(override.sd_model_checkpoint ?? settings.sd_model_checkpoint ?? "");
    const checkpoint = checkpoints.find((name) => name === wanted || name.replace(/\.[^.]+$/, "") === wanted);
    if (!checkpoint) {
      return {
        status: 500,
        body: {
          error: "RuntimeError",
          detail: "",
          body: "",
          errors: `model '${wanted}' not found; the webui lists: ${checkpoints.join(", ") || "(none)"}`,
        },
      };
    }
    const vaeName = override.sd_vae as string | undefined;
    if (vaeName && vaeName !== "None" && vaeName !== "Automatic" && !vaes.includes(vaeName)) {
      return {
        status: 500,
        body: { error: "RuntimeError", detail: "", body: "", errors: `VAE '${vaeName}' not found` },
      };
    }
    const steps = Number(body.steps ?? 20);
    state.job = "txt2img";
    state.job_count = 1;
    state.sampling_steps = steps;
    state.interrupted = false;
    for (let step = 1; step <= steps && !state.interrupted; step++) {
      await sleepMs(options.stepDelayMs ?? 5);
      state.sampling_step = step;
    }
    const width = Number(body.width ?? 512);
    const height = Number(body.height ?? 512);
    const seed = Number(body.seed ?? -1);
    const clipSkip = Number(override.CLIP_stop_at_last_layers ?? settings.CLIP_stop_at_last_layers);
    const prompt = String(body.prompt ?? "");
    const negative = String(body.negative_prompt ?? "");
    const scheduler = String(body.scheduler ?? "Automatic");
    const fingerprint = await fileFingerprint(join(checkpointFolder, checkpoint));
    const shortHash = fingerprint.toString("hex").slice(0, 10);
    const pairs = [
      `Steps: ${steps}`,
      `Sampler: ${sampler}`,
      ...(scheduler === "Automatic" ? [] : [`Schedule type: ${scheduler}`]),
      `CFG scale: ${Number(body.cfg_scale ?? 7)}`,
      `Seed: ${seed}`,
      `Size: ${width}x${height}`,
      `Model hash: ${shortHash}`,
      `Model: ${checkpoint.replace(/\.[^.]+$/, "")}`,
      ...(vaeName && vaeName !== "None" && vaeName !== "Automatic" ? [`VAE: ${vaeName}`] : []),
      ...(clipSkip > 1 ? [`Clip skip: ${clipSkip}`] : []),
      "Version: v1.10.1 (gyoza stand-in)",
    ];
    const infotext = `${prompt}${negative ? `\nNegative prompt: ${negative}` : ""}\n${pairs.join(", ")}`;
    const png = await renderStandinPng({
      checkpoint: fingerprint,
      vae:
        vaeName && options.vaeFolder && vaes.includes(vaeName)
          ? await fileFingerprint(join(options.vaeFolder, vaeName))
          : undefined,
      seed,
      prompt: `${prompt}|cfg=${String(body.cfg_scale)}|${sampler}|steps=${steps}|clip=${clipSkip}`,
      width,
      height,
      texts: { parameters: infotext },
    });
    state.job = "";
    state.job_count = 0;
    state.sampling_step = 0;
    state.sampling_steps = 0;
    const info = {
      prompt,
      all_prompts: [prompt],
      negative_prompt: negative,
      all_negative_prompts: [negative],
      seed,
      all_seeds: [seed],
      subseed: -1,
      all_subseeds: [-1],
      width,
      height,
      sampler_name: sampler,
      cfg_scale: Number(body.cfg_scale ?? 7),
      steps,
      batch_size: 1,
      sd_model_name: checkpoint.replace(/\.[^.]+$/, ""),
      sd_model_hash: shortHash,
      sd_vae_name: vaeName && vaeName !== "None" ? vaeName : null,
      clip_skip: clipSkip,
      infotexts: [infotext],
      version: "v1.10.1",
    };
    if (body.override_settings_restore_afterwards === false) Object.assign(settings, override);
    return {
      status: 200,
      body: {
        images: body.send_images === false ? [] : [png.toString("base64")],
        parameters: body,
        info: JSON.stringify(info),
      },
    };
  };

  const server: Server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? "/", "http://standin");
      const path = url.pathname;
      requests.push(`${request.method} ${path}`);
      if (await faults.apply(path, response)) return;
      const route = `${request.method} ${path}`;
      switch (route) {
        case "GET /sdapi/v1/sd-models":
          sendJson(
            response,
            200,
            checkpoints.map((name) => ({
              title: name,
              model_name: name.replace(/[\\/]/g, "_").replace(/\.[^.]+$/, ""),
              hash: null,
              sha256: null,
              filename: join(checkpointFolder, name),
              config: null,
            })),
          );
          return;
        case "GET /sdapi/v1/sd-vae":
          sendJson(
            response,
            200,
            vaes.map((name) => ({ model_name: name, filename: join(options.vaeFolder ?? "", name) })),
          );
          return;
        case "GET /sdapi/v1/samplers":
          sendJson(
            response,
            200,
            A1111_STANDIN_SAMPLERS.map((name) => ({ name, aliases: [], options: {} })),
          );
          return;
        case "GET /sdapi/v1/schedulers":
          sendJson(
            response,
            200,
            A1111_STANDIN_SCHEDULERS.map((label) => ({
              name: label.toLowerCase().replace(/ /g, "_"),
              label,
              aliases: null,
              default_rho: -1,
              need_inner_model: false,
            })),
          );
          return;
        case "GET /sdapi/v1/options":
          sendJson(response, 200, settings);
          return;
        case "POST /sdapi/v1/refresh-checkpoints":
          await readRequestJson(request);
          checkpoints = await listModelFiles(checkpointFolder);
          sendJson(response, 200, null);
          return;
        case "POST /sdapi/v1/refresh-vae":
          await readRequestJson(request);
          vaes = options.vaeFolder ? await listModelFiles(options.vaeFolder) : [];
          sendJson(response, 200, null);
          return;
        case "GET /sdapi/v1/progress": {
          const fraction = state.sampling_steps ? state.sampling_step / state.sampling_steps : 0;
          sendJson(response, 200, {
            progress: fraction,
            eta_relative: 0,
            state: {
              skipped: false,
              interrupted: state.interrupted,
              stopping_generation: false,
              job: state.job,
              job_count: state.job_count,
              job_timestamp: "20260101000000",
              job_no: 0,
              sampling_step: state.sampling_step,
              sampling_steps: state.sampling_steps,
            },
            current_image: null,
            textinfo: null,
          });
          return;
        }
        case "POST /sdapi/v1/interrupt":
          await readRequestJson(request);
          if (state.job) state.interrupted = true;
          sendJson(response, 200, {});
          return;
        case "POST /sdapi/v1/txt2img": {
          const body = await readRequestJson(request);
          if (body === INVALID_JSON || !body || typeof body !== "object" || Array.isArray(body)) {
            sendJson(response, 422, {
              detail: [{ loc: ["body"], msg: "value is not a valid dict", type: "type_error.dict" }],
            });
            return;
          }
          const fields = body as Record<string, unknown>;
          txt2img.push(fields);
          const detail: unknown[] = [];
          for (const [key, type] of Object.entries(FIELD_TYPES)) {
            const value = fields[key];
            if (value === undefined || value === null) continue;
            const ok =
              type === "int"
                ? Number.isInteger(value)
                : type === "float"
                  ? typeof value === "number"
                  : type === "str"
                    ? typeof value === "string"
                    : type === "bool"
                      ? typeof value === "boolean"
                      : typeof value === "object" && !Array.isArray(value);
            if (!ok) {
              const words = { int: "integer", float: "float", str: "string", bool: "boolean", dict: "dict" }[
                type
              ];
              detail.push({
                loc: ["body", key],
                msg: `value is not a valid ${words}`,
                type: `type_error.${type === "str" ? "str" : type === "dict" ? "dict" : type === "int" ? "integer" : type}`,
              });
            }
          }
          if (detail.length > 0) {
            sendJson(response, 422, { detail });
            return;
          }
          const run = lock.then(() => generate(fields));
          lock = run.then(
            () => {},
            () => {},
          );
          const answer = await run;
          sendJson(response, answer.status, answer.body);
          return;
        }
        default:
          sendJson(response, 404, { detail: "Not Found" });
      }
    })().catch((error) => {
      if (!response.headersSent)
        sendJson(response, 500, { error: "Exception", detail: "", body: "", errors: String(error) });
      else response.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    txt2img,
    inject: (fault, times, path) => faults.inject(fault, times, path),
    close: async () => {
      state.interrupted = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
