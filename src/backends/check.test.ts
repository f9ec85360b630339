import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BufferByteSource } from "../io/byte-source.js";
import { readSafetensorsHeader } from "../io/safetensors/read-safetensors.js";
import { startA1111Standin } from "../test-support/a1111-standin.js";
import { backendConfig, writeTinyCheckpoint } from "../test-support/backend-fixtures.js";
import { startComfyStandin } from "../test-support/comfyui-standin.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { probeSafetensors } from "./check.js";
import { createBackend } from "./index.js";

let dir = "";
useTempDirWithHashCache("gyoza-check-", (path) => {
  dir = path;
});

describe("backend check against the stand-ins", () => {
  let models = "";
  beforeAll(async () => {
    models = join(dir, "models");
    await mkdir(join(models, "gyoza"), { recursive: true });
    await writeTinyCheckpoint(join(models, "a.safetensors"), 1);
  });

  it("the probe is a valid safetensors file", async () => {
    const header = await readSafetensorsHeader(new BufferByteSource(probeSafetensors(), "probe.safetensors"));
    expect([...header.tensors.keys()]).toEqual(["gyoza_probe"]);
  });

  for (const kind of ["comfyui", "a1111"] as const) {
    const start = (options: { cannotSeeFolder?: boolean } = {}) =>
      kind === "comfyui"
        ? startComfyStandin({ modelFolder: models, ...options })
        : startA1111Standin({ modelFolder: models, ...options });

    it(`${kind}: a backend that sees the model folder passes every check and the probe is removed`, async () => {
      const standin = await start();
      try {
        const result = await createBackend(backendConfig(kind, standin.url, models)).check();
        expect(result.items.map((item) => [item.check, item.ok])).toEqual([
          ["reachable", true],
          ["checkpoints", true],
          ["samplers", true],
          ["sees model folder", true],
        ]);
        expect(result.ok).toBe(true);
        expect(result.items[3]!.detail).toMatch(/listed as gyoza-probe-[0-9a-f]{8}\.safetensors/);
        expect((await readdir(models)).filter((name) => name.includes("probe"))).toEqual([]);
      } finally {
        await standin.close();
      }
    });

    it(`${kind}: a backend that cannot see the model folder fails the check with a fix`, async () => {
      const standin = await start({ cannotSeeFolder: true });
      try {
        const result = await createBackend(backendConfig(kind, standin.url, models)).check();
        expect(result.ok).toBe(false);
        const item = result.items.find((entry) => entry.check === "sees model folder")!;
        expect(item.ok).toBe(false);
        expect(item.detail).toContain(kind === "comfyui" ? "extra_model_paths.yaml" : "--ckpt-dir");
        expect((await readdir(models)).filter((name) => name.includes("probe"))).toEqual([]);
      } finally {
        await standin.close();
      }
    });

    it(`${kind}: a probe listed under a subfolder names the model_prefix to set`, async () => {
      const standin = await start();
      try {
        const result = await createBackend(backendConfig(kind, standin.url, join(models, "gyoza"))).check();
        const item = result.items.find((entry) => entry.check === "sees model folder")!;
        expect(item.ok).toBe(false);
        expect(item.detail).toContain("fix model_prefix");
        const fixed = await createBackend(
          backendConfig(kind, standin.url, join(models, "gyoza"), { modelPrefix: "gyoza" }),
        ).check();
        expect(fixed.ok).toBe(true);
      } finally {
        await standin.close();
      }
    });

    it(`${kind}: a backend that is down fails at 'reachable' and stops there`, async () => {
      const standin = await start();
      await standin.close();
      const result = await createBackend(backendConfig(kind, standin.url, models)).check();
      expect(result.items).toHaveLength(1);
      expect(result.items[0]).toMatchObject({ check: "reachable", ok: false });
      expect(result.items[0]!.detail).toContain("is not reachable");
    });
  }

  it("a model folder that does not exist is reported, nothing written", async () => {
    const standin = await startComfyStandin({ modelFolder: models });
    try {
      const result = await createBackend(backendConfig("comfyui", standin.url, join(dir, "nope"))).check();
      expect(result.items.at(-1)).toMatchObject({ check: "model folder", ok: false });
    } finally {
      await standin.close();
    }
  });
});
