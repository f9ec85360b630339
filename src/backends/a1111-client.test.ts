import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { readImageMetadata } from "../image/index.js";
import { textsByKey } from "../image/metadata-types.js";
import { BufferByteSource } from "../io/byte-source.js";
import { type A1111Standin, startA1111Standin } from "../test-support/a1111-standin.js";
import { backendConfig, REQUEST, writeTinyCheckpoint } from "../test-support/backend-fixtures.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { A1111Backend, buildA1111Payload } from "./a1111-client.js";
import type { GenerationProgress } from "./types.js";

let dir = "";
useTempDirWithHashCache("gyoza-a1111-", (path) => {
  dir = path;
});

describe("A1111 client against the stand-in", () => {
  let standin: A1111Standin;
  let models = "";
  beforeAll(async () => {
    models = join(dir, "models");
    await mkdir(models, { recursive: true });
    await writeTinyCheckpoint(join(models, "a.safetensors"), 1);
    await mkdir(join(dir, "vae"));
    await writeTinyCheckpoint(join(dir, "vae", "v.safetensors"), 3);
    standin = await startA1111Standin({ modelFolder: models, vaeFolder: join(dir, "vae"), stepDelayMs: 60 });
  });
  afterAll(async () => {
    await standin.close();
  });

  it("sends the checkpoint, VAE and clip skip as override settings restored afterwards, saving nothing", () => {
    const payload = buildA1111Payload({
      ...REQUEST,
      checkpoint: "a.safetensors",
      vae: "v.safetensors",
      loras: [{ name: "detail.safetensors", strength: 0.6 }],
    });
    expect(payload).toMatchObject({
      prompt: "a gyoza on a plate <lora:detail:0.6>",
      sampler_name: "DPM++ 2M",
      scheduler: "Karras",
      cfg_scale: 7,
      override_settings: {
        sd_model_checkpoint: "a.safetensors",
        sd_vae: "v.safetensors",
        CLIP_stop_at_last_layers: 2,
      },
      override_settings_restore_afterwards: true,
      send_images: true,
      save_images: false,
    });
  });

  it("generates a PNG with its infotext, reporting steps from /progress", async () => {
    const backend = new A1111Backend(backendConfig("a1111", standin.url, models));
    const events: GenerationProgress[] = [];
    const image = await backend.generate(
      { ...REQUEST, steps: 20, checkpoint: "a.safetensors" },
      { onProgress: (event) => events.push(event) },
    );
    expect((await sharp(image.png).metadata()).format).toBe("png");
    expect(image.infotext).toContain(
      "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42",
    );
    expect(image.infotext).toContain("Clip skip: 2");
    const texts = textsByKey((await readImageMetadata(new BufferByteSource(image.png, "image.png"))).texts);
    expect(texts.parameters).toBe(image.infotext);
    expect(events.some((event) => event.type === "step" && event.step > 0 && event.totalSteps === 20)).toBe(
      true,
    );
    expect(events.at(-1)).toEqual({ type: "done" });
  });

  it("sees a new checkpoint only after refresh-checkpoints, as the webui does", async () => {
    const backend = new A1111Backend(backendConfig("a1111", standin.url, models));
    await writeTinyCheckpoint(join(models, "new.safetensors"), 9);
    expect(await backend.listCheckpoints()).not.toContain("new.safetensors");
    await backend.refreshModels();
    expect(await backend.listCheckpoints()).toContain("new.safetensors");
    expect(await backend.listVaes()).toEqual(["v.safetensors"]);
    expect(await backend.listSamplers()).toContain("Euler a");
  });

  it("a body of the wrong shape is a 422 shown as the field and pydantic's words", async () => {
    const backend = new A1111Backend(backendConfig("a1111", standin.url, models));
    const error = await backend
      .generate({ ...REQUEST, steps: 2.5, checkpoint: "a.safetensors" })
      .catch((e: unknown) => e);
    expect(isGyozaError(error, "usage")).toBe(true);
    expect((error as Error).message).toContain(
      "refused /sdapi/v1/txt2img: steps: value is not a valid integer",
    );
  });

  it("a checkpoint the webui does not list is its 500 error text", async () => {
    const backend = new A1111Backend(backendConfig("a1111", standin.url, models));
    const error = await backend
      .generate({ ...REQUEST, checkpoint: "missing.safetensors" })
      .catch((e: unknown) => e);
    expect(isGyozaError(error, "network")).toBe(true);
    expect((error as Error).message).toContain(
      "(HTTP 500): RuntimeError: model 'missing.safetensors' not found",
    );
  });

  it("an unknown sampler is the webui's 404 'Sampler not found'", async () => {
    const backend = new A1111Backend(backendConfig("a1111", standin.url, models));
    const error = await backend
      .generate({ ...REQUEST, sampler: "Nope", checkpoint: "a.safetensors" })
      .catch((e: unknown) => e);
    expect((error as Error).message).toContain("Sampler not found");
  });

  it("aborting interrupts the webui and rejects as interrupted", async () => {
    const backend = new A1111Backend(backendConfig("a1111", standin.url, models));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const error = await backend
      .generate({ ...REQUEST, steps: 200, checkpoint: "a.safetensors" }, { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(isGyozaError(error, "interrupted")).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(standin.requests).toContain("POST /sdapi/v1/interrupt");
  });

  it("a webui slower than timeout_seconds is interrupted with a timeout error", async () => {
    const backend = new A1111Backend(backendConfig("a1111", standin.url, models, { timeoutSeconds: 0.4 }));
    const error = await backend
      .generate({ ...REQUEST, steps: 200, checkpoint: "a.safetensors" })
      .catch((e: unknown) => e);
    expect(isGyozaError(error, "network")).toBe(true);
    expect((error as Error).message).toContain("did not finish the image within 0.4 s");
  });

  it("a webui that is down is named with its URL", async () => {
    const down = await startA1111Standin({ modelFolder: models });
    await down.close();
    const backend = new A1111Backend(backendConfig("a1111", down.url, models));
    const error = await backend.listCheckpoints().catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      new RegExp(`A1111 at ${down.url} is not reachable: .*ECONNREFUSED`),
    );
  });

  it("an answer that is not JSON is named as such, not a parse crash", async () => {
    const backend = new A1111Backend(backendConfig("a1111", standin.url, models));
    standin.inject({ status: 200, text: "<html>login</html>" }, 1, "/sdapi/v1/sd-models");
    const error = await backend.listCheckpoints().catch((e: unknown) => e);
    expect((error as Error).message).toContain("with something that is not JSON");
  });
});
