import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerationParams } from "../backends/types.js";
import { detectGeneration, readImageMetadata, textsByKey } from "../image/index.js";
import { splitPng } from "../image/png-writer.js";
import { BufferByteSource } from "../io/byte-source.js";
import { FolderBackend } from "./test-support/folder-backend.js";
import { writeSampleImage } from "./write-sample-image.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-sample-image-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const params: GenerationParams = {
  prompt: "a bowl of gyoza, steam, (detailed:1.2)",
  negativePrompt: "blurry, lowres",
  seed: 1234567,
  steps: 20,
  cfg: 6.5,
  sampler: "DPM++ 2M",
  scheduler: "Karras",
  width: 512,
  height: 768,
  clipSkip: 2,
  vae: "vae-ft-mse.safetensors",
};
const model = { name: "gyoza-0123456789ab", autov2: "fedcba9876" };
const recipeKey = "ab".repeat(32);

async function texts(path: string) {
  const bytes = await readFile(path);
  return textsByKey((await readImageMetadata(new BufferByteSource(bytes))).texts);
}

describe("writeSampleImage", () => {
  it.each(["a1111", "comfyui"] as const)(
    "writes infotext every field of which reads back (%s backend)",
    async (kind) => {
      const backend = new FolderBackend(dir, { kind });
      const image = await backend.generate({ ...params, checkpoint: "gyoza-0123456789ab.safetensors" });
      const path = join(dir, `${kind}.png`);
      await writeSampleImage(path, { image, params, model, recipeKey, vaeHash: "1234abcd56" });
      const found = await texts(path);
      // the infotext alone, read as A1111 would
      const info = detectGeneration({ parameters: found.parameters! })!;
      expect(info.generator).toBe("a1111");
      expect(info.prompt).toBe(params.prompt);
      expect(info.negativePrompt).toBe(params.negativePrompt);
      expect(info.seed).toBe(params.seed);
      expect(info.steps).toBe(params.steps);
      expect(info.sampler).toBe("DPM++ 2M");
      expect(info.scheduler).toBe("Karras");
      expect(info.cfgScale).toBe(6.5);
      expect([info.width, info.height]).toEqual([512, 768]);
      expect(info.clipSkip).toBe(2);
      expect(info.model).toEqual({ name: model.name, hash: model.autov2 });
      expect(info.vae).toEqual({ name: params.vae, hash: "1234abcd56" });
      expect(found.parameters).toContain(`gyoza recipe: ${recipeKey}`);
      if (kind === "comfyui") {
        // the backend's graph and workflow stay exactly as it wrote them
        const original = textsByKey((await readImageMetadata(new BufferByteSource(image.png))).texts);
        expect(found.prompt).toBe(original.prompt);
        expect(found.workflow).toBe(original.workflow);
        // byte for byte: every chunk of the backend's but `parameters` is in the written file unchanged
        const written = await readFile(path);
        const backendChunks = splitPng(image.png).filter((chunk) => chunk.type !== "IEND");
        expect(backendChunks.some((chunk) => chunk.type === "tEXt")).toBe(true);
        for (const chunk of backendChunks) expect(written.includes(Buffer.from(chunk.bytes))).toBe(true);
        const whole = detectGeneration(found)!;
        expect(whole.generator).toBe("comfyui");
        expect(whole.seed).toBe(params.seed);
        expect(whole.model?.name).toBe("gyoza-0123456789ab.safetensors");
      } else {
        // fields only the backend wrote are kept
        expect(found.parameters).toContain("Version: v1.10.1");
        expect(found.parameters!.match(/Model: /g)).toHaveLength(1);
      }
      expect((await readdir(dir)).filter((name) => name.includes("partial"))).toEqual([]);
    },
  );

  it("omits Clip skip at 1 and VAE when the checkpoint's own is used, as A1111 does", async () => {
    const backend = new FolderBackend(dir, { kind: "comfyui" });
    const plain = { ...params, clipSkip: 1, vae: undefined };
    const image = await backend.generate({ ...plain, checkpoint: "m.safetensors" });
    const path = join(dir, "plain.png");
    await writeSampleImage(path, { image, params: plain, model });
    const found = await texts(path);
    expect(found.parameters).not.toMatch(/Clip skip|VAE|gyoza recipe/);
    expect(detectGeneration({ parameters: found.parameters! })!.clipSkip).toBe(1);
  });

  it("refuses bytes from the backend that are not a PNG and writes nothing", async () => {
    const path = join(dir, "broken.png");
    await expect(
      writeSampleImage(path, { image: { png: Buffer.from("<html>502 Bad Gateway</html>") }, params, model }),
    ).rejects.toThrow(/not a PNG/);
    expect(await readdir(dir)).not.toContain("broken.png");
  });
});
