import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { readImageMetadata } from "../image/index.js";
import { textsByKey } from "../image/metadata-types.js";
import { BufferByteSource } from "../io/byte-source.js";
import { backendConfig, REQUEST, writeTinyCheckpoint } from "../test-support/backend-fixtures.js";
import { type ComfyStandin, startComfyStandin } from "../test-support/comfyui-standin.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { buildComfyGraph, type ComfyGraph, ComfyUIBackend, comboOptions } from "./comfyui-client.js";
import { buildComfyWorkflow } from "./comfyui-workflow.js";
import type { GenerationProgress } from "./types.js";

let dir = "";
useTempDirWithHashCache("gyoza-comfy-", (path) => {
  dir = path;
});

describe("ComfyUI client against the stand-in", () => {
  let standin: ComfyStandin;
  let models = "";
  beforeAll(async () => {
    models = join(dir, "models");
    await mkdir(join(models, "gyoza"), { recursive: true });
    await writeTinyCheckpoint(join(models, "a.safetensors"), 1);
    await writeTinyCheckpoint(join(models, "gyoza", "b.safetensors"), 2);
    await mkdir(join(dir, "vae"));
    await writeTinyCheckpoint(join(dir, "vae", "v.safetensors"), 3);
    standin = await startComfyStandin({ modelFolder: models, vaeFolder: join(dir, "vae") });
  });
  afterAll(async () => {
    await standin.close();
  });

  it("builds the API graph with CLIPSetLastLayer at minus the clip skip and the sampler mapped", () => {
    const graph = buildComfyGraph({
      ...REQUEST,
      checkpoint: "a.safetensors",
      vae: "v.safetensors",
      loras: [{ name: "l.safetensors", strength: 0.5 }],
    });
    expect(graph["2"]).toEqual({
      class_type: "CLIPSetLastLayer",
      inputs: { clip: ["20", 1], stop_at_clip_layer: -2 },
    });
    expect(graph["6"]!.inputs).toMatchObject({
      sampler_name: "dpmpp_2m",
      scheduler: "karras",
      seed: 42,
      steps: 6,
      cfg: 7,
      model: ["20", 0],
    });
    expect(graph["7"]!.inputs.vae).toEqual(["8", 0]);
    expect(graph["20"]).toMatchObject({
      class_type: "LoraLoader",
      inputs: { lora_name: "l.safetensors", model: ["1", 0] },
    });
  });

  it("reads checkpoint lists in both the old and the COMBO object_info shapes", () => {
    const old = { CheckpointLoaderSimple: { input: { required: { ckpt_name: [["x.safetensors"], {}] } } } };
    const combo = {
      CheckpointLoaderSimple: {
        input: { required: { ckpt_name: ["COMBO", { options: ["y.safetensors"] }] } },
      },
    };
    expect(comboOptions(old, "CheckpointLoaderSimple", "ckpt_name")).toEqual(["x.safetensors"]);
    expect(comboOptions(combo, "CheckpointLoaderSimple", "ckpt_name")).toEqual(["y.safetensors"]);
  });

  it("lists checkpoints and VAEs the way ComfyUI names them (subfolders with /)", async () => {
    const backend = new ComfyUIBackend(backendConfig("comfyui", standin.url, models));
    expect(await backend.listCheckpoints()).toEqual(["a.safetensors", "gyoza/b.safetensors"]);
    expect(await backend.listVaes()).toEqual(["v.safetensors"]);
    expect(
      new ComfyUIBackend(
        backendConfig("comfyui", standin.url, models, { modelPrefix: "gyoza" }),
      ).checkpointName("b.safetensors"),
    ).toBe("gyoza/b.safetensors");
  });

  it("generates a PNG with the graph in its prompt chunk, reporting queue, steps and done", async () => {
    const backend = new ComfyUIBackend(backendConfig("comfyui", standin.url, models));
    const events: GenerationProgress[] = [];
    const image = await backend.generate(
      { ...REQUEST, checkpoint: "a.safetensors" },
      { onProgress: (event) => events.push(event) },
    );
    const meta = await sharp(image.png).metadata();
    expect(meta.format).toBe("png");
    expect([meta.width, meta.height]).toEqual([64, 64]);
    const texts = textsByKey((await readImageMetadata(new BufferByteSource(image.png, "image.png"))).texts);
    expect(JSON.parse(texts.prompt!)).toEqual(image.comfyPrompt);
    // the UI workflow went out in extra_pnginfo and came back as SaveImage's `workflow` chunk
    const workflow = JSON.parse(texts.workflow!);
    expect(workflow).toEqual(buildComfyWorkflow(image.comfyPrompt as ComfyGraph));
    expect(workflow.nodes.find((node: { type: string }) => node.type === "KSampler").widgets_values[0]).toBe(
      REQUEST.seed,
    );
    const steps = events.filter((event) => event.type === "step");
    expect(steps.map((event) => event.type === "step" && event.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.at(-1)).toEqual({ type: "done" });
    expect(image.backendJobId).toMatch(/[0-9a-f-]{36}/);
  });

  it("gives different pixels for different checkpoints and seeds, the same for the same request", async () => {
    const backend = new ComfyUIBackend(backendConfig("comfyui", standin.url, models));
    const pixels = async (checkpoint: string, seed: number) =>
      sharp((await backend.generate({ ...REQUEST, checkpoint, seed })).png)
        .raw()
        .toBuffer();
    const a = await pixels("a.safetensors", 1);
    expect((await pixels("a.safetensors", 1)).equals(a)).toBe(true);
    expect((await pixels("gyoza/b.safetensors", 1)).equals(a)).toBe(false);
    expect((await pixels("a.safetensors", 2)).equals(a)).toBe(false);
  });

  it("polls /history when the websocket is refused", async () => {
    const noSocket = await startComfyStandin({ modelFolder: models, noWebsocket: true });
    try {
      const backend = new ComfyUIBackend(backendConfig("comfyui", noSocket.url, models));
      const image = await backend.generate({ ...REQUEST, checkpoint: "a.safetensors" });
      expect(image.png.subarray(1, 4).toString()).toBe("PNG");
      expect(
        noSocket.requests.filter((request) => request.startsWith("GET /history/")).length,
      ).toBeGreaterThan(0);
    } finally {
      await noSocket.close();
    }
  });

  it("a checkpoint ComfyUI does not list is an error naming the node and the input", async () => {
    const backend = new ComfyUIBackend(backendConfig("comfyui", standin.url, models));
    const error = await backend
      .generate({ ...REQUEST, checkpoint: "missing.safetensors" })
      .catch((e: unknown) => e);
    expect(isGyozaError(error, "usage")).toBe(true);
    expect((error as Error).message).toContain(
      "node 1 (CheckpointLoaderSimple) input 'ckpt_name': Value not in list",
    );
    expect((error as Error).message).toContain("'missing.safetensors' not in");
  });

  it("an unknown sampler is refused before anything is sent, listing the known ones", async () => {
    const backend = new ComfyUIBackend(backendConfig("comfyui", standin.url, models));
    const before = standin.requests.length;
    const error = await backend
      .generate({ ...REQUEST, checkpoint: "a.safetensors", sampler: "Turbo Magic" })
      .catch((e: unknown) => e);
    expect(isGyozaError(error, "unknown-id")).toBe(true);
    expect((error as { fix: string }).fix).toContain("DPM++ 2M");
    expect(standin.requests.length).toBe(before);
  });

  it("an error while executing names the node and ComfyUI's message", async () => {
    const backend = new ComfyUIBackend(backendConfig("comfyui", standin.url, models));
    standin.failNextExecution("6", "CUDA out of memory");
    const error = await backend
      .generate({ ...REQUEST, checkpoint: "a.safetensors" })
      .catch((e: unknown) => e);
    expect((error as Error).message).toContain("node 6 (KSampler)");
    expect((error as Error).message).toContain("RuntimeError: CUDA out of memory");
  });

  it("aborting interrupts the running prompt on the server and rejects as interrupted", async () => {
    const slow = await startComfyStandin({ modelFolder: models, stepDelayMs: 200 });
    try {
      const backend = new ComfyUIBackend(backendConfig("comfyui", slow.url, models));
      const controller = new AbortController();
      const pending = backend.generate(
        { ...REQUEST, checkpoint: "a.safetensors", steps: 50 },
        {
          signal: controller.signal,
          onProgress: (event) => {
            if (event.type === "step" && event.step === 2) controller.abort();
          },
        },
      );
      const error = await pending.catch((e: unknown) => e);
      expect(isGyozaError(error, "interrupted")).toBe(true);
      expect(slow.requests).toContain("POST /interrupt");
      expect(slow.requests).toContain("POST /queue");
    } finally {
      await slow.close();
    }
  });

  it("a stand-in with a per-image delay takes that long per image whatever the steps, and an abort ends the wait", async () => {
    const slow = await startComfyStandin({ modelFolder: models, stepDelayMs: 0, imageDelayMs: 300 });
    try {
      const backend = new ComfyUIBackend(backendConfig("comfyui", slow.url, models));
      for (const steps of [1, 20]) {
        const started = performance.now();
        await backend.generate({ ...REQUEST, checkpoint: "a.safetensors", steps, width: 64, height: 64 });
        const ms = performance.now() - started;
        expect(ms).toBeGreaterThanOrEqual(295);
        expect(ms).toBeLessThan(3000);
      }
      const long = await startComfyStandin({ modelFolder: models, stepDelayMs: 0, imageDelayMs: 20_000 });
      try {
        const controller = new AbortController();
        const started = performance.now();
        setTimeout(() => controller.abort(), 200);
        const error = await new ComfyUIBackend(backendConfig("comfyui", long.url, models))
          .generate({ ...REQUEST, checkpoint: "a.safetensors" }, { signal: controller.signal })
          .catch((e: unknown) => e);
        expect(isGyozaError(error, "interrupted")).toBe(true);
        expect(long.requests).toContain("POST /interrupt");
        expect(performance.now() - started).toBeLessThan(5000);
      } finally {
        await long.close();
      }
    } finally {
      await slow.close();
    }
  });

  it("a backend slower than timeout_seconds is dropped with a timeout error", async () => {
    const slow = await startComfyStandin({ modelFolder: models, stepDelayMs: 300 });
    try {
      const backend = new ComfyUIBackend(backendConfig("comfyui", slow.url, models, { timeoutSeconds: 0.5 }));
      const error = await backend
        .generate({ ...REQUEST, checkpoint: "a.safetensors", steps: 20 })
        .catch((e: unknown) => e);
      expect(isGyozaError(error, "network")).toBe(true);
      expect((error as Error).message).toContain("did not finish the image within 0.5 s");
      expect(slow.requests).toContain("POST /interrupt");
    } finally {
      await slow.close();
    }
  });

  it("a backend that is down is named with its URL and a fix", async () => {
    const down = await startComfyStandin({ modelFolder: models });
    const url = down.url;
    await down.close();
    const backend = new ComfyUIBackend(backendConfig("comfyui", url, models));
    const error = await backend
      .generate({ ...REQUEST, checkpoint: "a.safetensors" })
      .catch((e: unknown) => e);
    expect(isGyozaError(error, "network")).toBe(true);
    expect((error as Error).message).toMatch(
      new RegExp(`ComfyUI at ${url} is not reachable: .*ECONNREFUSED`),
    );
    expect((error as { fix: string }).fix).toContain("start it");
  });

  it("a 500 from /prompt is reported with its status", async () => {
    const backend = new ComfyUIBackend(backendConfig("comfyui", standin.url, models));
    standin.inject({ status: 500, body: { error: "boom" } }, 1, "/prompt");
    const error = await backend
      .generate({ ...REQUEST, checkpoint: "a.safetensors" })
      .catch((e: unknown) => e);
    expect((error as Error).message).toContain("did not queue the graph (HTTP 500)");
  });
});
