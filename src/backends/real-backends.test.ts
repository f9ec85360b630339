/**
 * The opt-in suite against a REAL backend (skipped unless configured): `npm run test:backends`
 * with, for ComfyUI, GYOZA_TEST_COMFYUI_URL and for A1111/Forge, GYOZA_TEST_A1111_URL; plus
 * GYOZA_TEST_MODEL_FOLDER (a folder that backend reads checkpoints from, as a path on this
 * machine), GYOZA_TEST_CHECKPOINT (a checkpoint it lists, as it names it) and optionally
 * GYOZA_TEST_MODEL_PREFIX (the subfolder the folder is listed under).
 */
import { describe, expect, it } from "vitest";
import { readImageMetadata } from "../image/index.js";
import { textsByKey } from "../image/metadata-types.js";
import { BufferByteSource } from "../io/byte-source.js";
import { createBackend } from "./index.js";
import type { BackendConfig, BackendKind } from "./types.js";

const env = process.env;
const targets: { kind: BackendKind; url: string | undefined }[] = [
  { kind: "comfyui", url: env.GYOZA_TEST_COMFYUI_URL },
  { kind: "a1111", url: env.GYOZA_TEST_A1111_URL },
];

for (const { kind, url } of targets) {
  describe.skipIf(!url)(`real ${kind} at ${url ?? "(not set)"}`, () => {
    const config: BackendConfig = {
      name: `real-${kind}`,
      kind,
      url: (url ?? "").replace(/\/+$/, ""),
      modelFolder: env.GYOZA_TEST_MODEL_FOLDER ?? "",
      modelPrefix: env.GYOZA_TEST_MODEL_PREFIX ?? "",
      headers: {},
      timeoutSeconds: 600,
    };
    const backend = createBackend(config);

    it("passes backend check, including seeing the model folder", { timeout: 120_000 }, async () => {
      expect(env.GYOZA_TEST_MODEL_FOLDER, "set GYOZA_TEST_MODEL_FOLDER").toBeTruthy();
      const result = await backend.check();
      expect(result.items.filter((item) => !item.ok)).toEqual([]);
    });

    it("lists the checkpoint named in GYOZA_TEST_CHECKPOINT", { timeout: 60_000 }, async () => {
      expect(env.GYOZA_TEST_CHECKPOINT, "set GYOZA_TEST_CHECKPOINT").toBeTruthy();
      expect(await backend.listCheckpoints()).toContain(env.GYOZA_TEST_CHECKPOINT);
    });

    it("generates one 256×256 PNG with its metadata, reporting steps", { timeout: 600_000 }, async () => {
      const steps: number[] = [];
      const image = await backend.generate(
        {
          checkpoint: env.GYOZA_TEST_CHECKPOINT ?? "",
          prompt: "a plate of gyoza, photo",
          negativePrompt: "",
          seed: 1,
          steps: 8,
          cfg: 6,
          sampler: "Euler a",
          scheduler: "Automatic",
          width: 256,
          height: 256,
          clipSkip: 2,
        },
        { onProgress: (event) => event.type === "step" && steps.push(event.step) },
      );
      const metadata = await readImageMetadata(new BufferByteSource(image.png, "real.png"));
      expect(metadata.container).toBe("png");
      const texts = textsByKey(metadata.texts);
      if (kind === "comfyui") {
        expect(JSON.parse(texts.prompt ?? "null")).toEqual(image.comfyPrompt);
        // real ComfyUI writes our extra_pnginfo workflow as its own chunk: drop the image on its canvas to check it loads
        expect(JSON.parse(texts.workflow ?? "null")).toMatchObject({ version: 0.4 });
      } else expect(image.infotext).toMatch(/Steps: 8, Sampler: Euler a/);
      expect(steps.length).toBeGreaterThan(0);
    });
  });
}

describe.skipIf(Boolean(env.GYOZA_TEST_COMFYUI_URL || env.GYOZA_TEST_A1111_URL))("real backends", () => {
  it("are skipped: set GYOZA_TEST_COMFYUI_URL or GYOZA_TEST_A1111_URL (see README, Generation backends)", () => {
    expect(true).toBe(true);
  });
});
