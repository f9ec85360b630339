import { access, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { hashFile } from "../hash/index.js";
import { detectGeneration, makePngTextChunk, readImageMetadata, textsByKey } from "../image/index.js";
import { buildPng } from "../image/test-support/test-images.js";
import { FileByteSource } from "../io/byte-source.js";
import { isDType, isFloatDType } from "../io/dtype.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import type { PublishManifest } from "./publish-manifest.js";
import type { PublishSource } from "./publish-source.js";
import { publishVersion } from "./publish-version.js";

let dir = "";
useTempDirWithHashCache("gyoza-publish-", (path) => (dir = path), { each: true });

const INFOTEXT =
  "1girl, gyoza, masterpiece\nNegative prompt: lowres, bad hands\nSteps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 8x8, Model hash: 0123456789, Clip skip: 2";

const RECIPE = `gyoza: 1
inputs:
  anime:
    path: models/anime.safetensors
  composition:
    path: models/composition.safetensors
steps:
  final:
    method: weighted_sum
    inputs: { a: anime, b: composition }
    alpha: COSINE
output:
  path: out/gyozamix.safetensors
  dtype: fp16
  prune: true
`;

/** A version as a mixer has it: an fp16 checkpoint with EMA and a baked VAE, a recipe, two samples. */
async function writeVersion(): Promise<PublishSource> {
  const models = join(dir, "models");
  await mkdir(models);
  const checkpoint = join(models, "gyozamix-v3.safetensors");
  await writeSyntheticCheckpoint(checkpoint, {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F16",
    seed: 1,
    ema: true,
  });
  const png = join(models, "sample 1.png");
  await writeFile(png, buildPng(8, 8, 0x40, [makePngTextChunk("parameters", INFOTEXT)]));
  const bare = join(models, "sample-2.png");
  await writeFile(bare, buildPng(4, 4));
  return {
    model: { name: "GyozaMix", type: "Checkpoint", checkpointType: "Merge", tags: ["anime", "merge"] },
    version: {
      name: "v3.0",
      baseModel: "SD 1.5",
      description: "<p>Soft colours | crisp lines</p>",
      trainedWords: ["gyoza style"],
      clipSkip: 2,
      license: "CreativeML Open RAIL-M",
      negativeEmbeddings: ["AuroraNegative"],
      vae: { name: "kl-f8-anime2.ckpt" },
    },
    files: [{ path: checkpoint, type: "Model" }],
    recipe: { name: "gyozamix-v3", text: RECIPE },
    parents: [
      { name: "Anime Detail v1", recipe: { name: "anime-detail", text: RECIPE } },
      { name: "Composition" },
    ],
    images: [{ path: png }, { path: bare }],
  };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

describe("publishVersion", () => {
  it("lays out the files, converted variants, .ckpt twins, the VAE, recipes, images, model card and civitai.json", async () => {
    const out = join(dir, "GyozaMix-v3");
    const manifest = await publishVersion(await writeVersion(), {
      dir: out,
      variants: ["fp16-pruned", "fp32-full"],
      ckpt: true,
    });
    expect(manifest.files.map((file) => [file.name, file.role])).toEqual([
      ["gyozamix-v3.safetensors", "original"],
      ["GyozaMix-v3.0-fp16-pruned.safetensors", "fp16-pruned"],
      ["GyozaMix-v3.0-fp32-full.safetensors", "fp32-full"],
      ["gyozamix-v3.ckpt", "ckpt"],
      ["GyozaMix-v3.0-fp16-pruned.ckpt", "ckpt"],
      ["GyozaMix-v3.0-fp32-full.ckpt", "ckpt"],
      ["kl-f8-anime2.safetensors", "vae"],
    ]);
    expect((await readdir(out)).sort()).toEqual(
      [...manifest.files.map((file) => file.name), "README.md", "civitai.json", "images", "recipes"].sort(),
    );
    expect((await readdir(join(out, "recipes"))).sort()).toEqual(["anime-detail.yaml", "gyozamix-v3.yaml"]);
    expect(await readFile(join(out, "recipes", "gyozamix-v3.yaml"), "utf8")).toBe(RECIPE);
    expect(manifest.images.map((image) => image.name)).toEqual([
      "images/sample-1.png",
      "images/sample-2.png",
    ]);
    // nothing of the staging folder is left beside the output
    expect((await readdir(dir)).filter((name) => name.includes("gyoza-partial"))).toEqual([]);
  });

  it("converts the fp16 pruned variant to fp16 without EMA and keeps the fp32 one whole", async () => {
    const out = join(dir, "out");
    const manifest = await publishVersion(await writeVersion(), {
      dir: out,
      variants: ["fp16-pruned", "fp32-full"],
    });
    const source = await openCheckpoint(join(dir, "models", "gyozamix-v3.safetensors"));
    const pruned = await openCheckpoint(join(out, "GyozaMix-v3.0-fp16-pruned.safetensors"));
    const full = await openCheckpoint(join(out, "GyozaMix-v3.0-fp32-full.safetensors"));
    try {
      const floats = (keys: Iterable<[string, { dtype: string }]>) =>
        [...keys].map(([, tensor]) => tensor.dtype).filter((dtype) => isDType(dtype) && isFloatDType(dtype));
      expect(new Set(floats(pruned.tensors))).toEqual(new Set(["F16"]));
      expect([...pruned.tensors.keys()].some((key) => key.startsWith("model_ema."))).toBe(false);
      expect([...source.tensors.keys()].some((key) => key.startsWith("model_ema."))).toBe(true);
      expect(new Set(floats(full.tensors))).toEqual(new Set(["F32"]));
      expect([...full.tensors.keys()].sort()).toEqual([...source.tensors.keys()].sort());
    } finally {
      await Promise.all([source.close(), pruned.close(), full.close()]);
    }
    const byName = new Map(manifest.files.map((file) => [file.name, file]));
    expect(byName.get("GyozaMix-v3.0-fp16-pruned.safetensors")).toMatchObject({
      type: "Pruned Model",
      metadata: { fp: "fp16", size: "pruned", format: "SafeTensor" },
    });
    expect(byName.get("GyozaMix-v3.0-fp32-full.safetensors")?.metadata).toEqual({
      fp: "fp32",
      size: "full",
      format: "SafeTensor",
    });
  });

  it("writes no converted copy that would equal the version's own file, and says so", async () => {
    const source = await writeVersion();
    const own = await publishVersion(source, { dir: join(dir, "a"), variants: ["fp16-pruned"] });
    const pruned = own.files.find((file) => file.role === "fp16-pruned")!;
    const again = await publishVersion(
      { ...source, files: [{ path: join(dir, "a", pruned.name) }] },
      { dir: join(dir, "b"), variants: ["fp16-pruned", "fp32-full"] },
    );
    expect(again.files.map((file) => [file.role, file.name])).toEqual([
      ["original", pruned.name],
      // converting never brings EMA back: the fp32 copy of a pruned file is pruned, and named so
      ["fp32-full", "GyozaMix-v3.0-fp32-pruned.safetensors"],
      ["vae", "kl-f8-anime2.safetensors"],
    ]);
    expect(again.notes).toEqual([`${pruned.name} already is fp16 pruned; no converted copy written`]);
  });

  it("writes civitai.json in Civitai's field names with the hashes gyoza hash computes for each written file", async () => {
    const out = join(dir, "out");
    await publishVersion(await writeVersion(), { dir: out, variants: ["fp16-pruned"], ckpt: true });
    const civitai = JSON.parse(await readFile(join(out, "civitai.json"), "utf8"));
    expect(civitai).toMatchObject({
      name: "v3.0",
      baseModel: "SD 1.5",
      description: "<p>Soft colours | crisp lines</p>",
      trainedWords: ["gyoza style"],
      clipSkip: 2,
      model: { name: "GyozaMix", type: "Checkpoint", checkpointType: "Merge" },
    });
    expect(civitai.files.length).toBe(5);
    for (const file of civitai.files) {
      const hashes = await hashFile(join(out, file.name), { cacheDir: false });
      expect(file.hashes).toEqual({
        AutoV1: hashes.autoV1,
        AutoV2: hashes.autoV2,
        AutoV3: hashes.autoV3,
        SHA256: hashes.sha256,
        CRC32: hashes.crc32Civitai,
        BLAKE3: hashes.blake3,
      });
      const bytes = (await readFile(join(out, file.name))).byteLength;
      expect(file.sizeKB).toBe(bytes / 1024);
      expect(Object.keys(file.metadata).sort()).toEqual(["format", "fp", "size"]);
    }
    expect(
      civitai.files
        .filter((file: { primary?: boolean }) => file.primary)
        .map((f: { name: string }) => f.name),
    ).toEqual(["gyozamix-v3.safetensors"]);
    expect(civitai.files.find((file: { name: string }) => file.name.endsWith(".ckpt")).metadata.format).toBe(
      "PickleTensor",
    );
    expect(civitai.images[0]).toMatchObject({
      url: "images/sample-1.png",
      width: 8,
      height: 8,
      meta: {
        prompt: "1girl, gyoza, masterpiece",
        negativePrompt: "lowres, bad hands",
        steps: 28,
        sampler: "DPM++ 2M Karras",
        cfgScale: 7,
        seed: 1234,
        clipSkip: 2,
      },
    });
    expect(civitai.images[1].meta).toBeNull();
  });

  it("writes a model card whose front matter parses as YAML with the Hub's fields, and the recipe as YAML and as a tree", async () => {
    const out = join(dir, "out");
    await publishVersion(await writeVersion(), { dir: out });
    const card = await readFile(join(out, "README.md"), "utf8");
    const match = /^---\n([\s\S]*?)\n---\n/.exec(card);
    expect(match).not.toBeNull();
    const front = parse(match![1]!);
    expect(front).toMatchObject({
      license: "creativeml-openrail-m",
      base_model: "stable-diffusion-v1-5/stable-diffusion-v1-5",
      base_model_relation: "merge",
      pipeline_tag: "text-to-image",
      widget: [
        {
          text: "1girl, gyoza, masterpiece",
          parameters: { negative_prompt: "lowres, bad hands" },
          output: { url: "images/sample-1.png" },
        },
      ],
    });
    expect(front.tags).toEqual(
      expect.arrayContaining(["stable-diffusion", "text-to-image", "anime", "merge"]),
    );
    expect(front.library_name).toBeUndefined();
    expect(card).toContain(
      "final: weighted_sum, alpha COSINE\n├─ a: anime (anime.safetensors)\n└─ b: composition (composition.safetensors)",
    );
    expect(card).toContain(`\`\`\`yaml\n${RECIPE.trimEnd()}\n\`\`\``);
    expect(card).toContain("Soft colours | crisp lines");
    const sha = JSON.parse(await readFile(join(out, "civitai.json"), "utf8")).files[0].hashes.SHA256;
    expect(card).toContain(`\`${sha}\``);
    expect(card).toContain("| [kl-f8-anime2.safetensors](kl-f8-anime2.safetensors) | VAE |");
  });

  it("copies sample images byte for byte, so their generation metadata reads back unchanged", async () => {
    const source = await writeVersion();
    const out = join(dir, "out");
    await publishVersion(source, { dir: out });
    const original = await readFile(source.images![0]!.path);
    const copied = await readFile(join(out, "images", "sample-1.png"));
    expect(copied.equals(original)).toBe(true);
    const file = await FileByteSource.open(join(out, "images", "sample-1.png"));
    try {
      const info = detectGeneration(textsByKey((await readImageMetadata(file)).texts));
      expect(info?.raw.parameters).toBe(INFOTEXT);
    } finally {
      await file.close();
    }
  });

  it("writes the baked VAE as a standalone VAE file with the checkpoint's first_stage_model tensors", async () => {
    const source = await writeVersion();
    const out = join(dir, "out");
    await publishVersion(source, { dir: out });
    const vae = await openCheckpoint(join(out, "kl-f8-anime2.safetensors"));
    const model = await openCheckpoint(source.files[0]!.path);
    try {
      const expected = [...model.tensors.keys()]
        .filter((key) => key.startsWith("first_stage_model."))
        .map((key) => key.slice("first_stage_model.".length));
      expect(expected.length).toBeGreaterThan(0);
      expect([...vae.tensors.keys()].sort()).toEqual(expected.sort());
    } finally {
      await Promise.all([vae.close(), model.close()]);
    }
  });

  it("copies the named VAE file instead when the version has one, and skips the VAE when told to", async () => {
    const source = await writeVersion();
    const vaePath = join(dir, "models", "kl-f8-anime2.safetensors");
    await writeSyntheticCheckpoint(vaePath, {
      layout: "sd1-ldm",
      size: "micro",
      dtype: "F32",
      seed: 3,
      vaeOnly: true,
    });
    const withFile = {
      ...source,
      version: { ...source.version, vae: { name: "kl-f8-anime2", path: vaePath } },
    };
    const copied = await publishVersion(withFile, { dir: join(dir, "a") });
    expect((await readFile(join(dir, "a", "kl-f8-anime2.safetensors"))).equals(await readFile(vaePath))).toBe(
      true,
    );
    expect(copied.files.find((file) => file.role === "vae")?.type).toBe("VAE");
    const without = await publishVersion(source, { dir: join(dir, "b"), vae: false });
    expect(without.files.map((file) => file.role)).toEqual(["original"]);
  });

  it("leaves no output folder when a source fails mid-way (a sample image gone after the models were converted)", async () => {
    const source = await writeVersion();
    const gone = { ...source, images: [...source.images!, { path: join(dir, "models", "gone.png") }] };
    const out = join(dir, "out");
    await expect(
      publishVersion(gone, { dir: out, variants: ["fp16-pruned"], ckpt: true }),
    ).rejects.toMatchObject({
      code: "io",
    });
    expect(await exists(out)).toBe(false);
    expect((await readdir(dir)).filter((name) => name.includes("gyoza-partial"))).toEqual([]);
  });

  it("refuses a non-empty output folder unless forced, and replaces it as a whole when forced", async () => {
    const source = await writeVersion();
    const out = join(dir, "out");
    await mkdir(out);
    await writeFile(join(out, "old-variant.safetensors"), "stale");
    await expect(publishVersion(source, { dir: out })).rejects.toMatchObject({ code: "usage" });
    expect(await readdir(out)).toEqual(["old-variant.safetensors"]);
    const manifest: PublishManifest = await publishVersion(source, { dir: out, force: true });
    expect(await exists(join(out, "old-variant.safetensors"))).toBe(false);
    expect(await exists(join(out, manifest.files[0]!.name))).toBe(true);
    expect((await readdir(dir)).filter((name) => name.includes("gyoza-partial"))).toEqual([]);
  });

  it("refuses a version whose checkpoint is truncated before writing anything", async () => {
    const source = await writeVersion();
    const truncated = join(dir, "models", "truncated.safetensors");
    await writeFile(truncated, (await readFile(source.files[0]!.path)).subarray(0, 4096));
    const out = join(dir, "out");
    await expect(
      publishVersion({ ...source, files: [{ path: truncated }] }, { dir: out }),
    ).rejects.toMatchObject({
      code: "format",
    });
    expect(await exists(out)).toBe(false);
  });

  it("keeps hostile names inside the folder: a recipe named ../../escape, a version named a/b, an image named ..png", async () => {
    const source = await writeVersion();
    const image = join(dir, "models", "..png");
    await writeFile(image, await readFile(source.images![0]!.path));
    const hostile: PublishSource = {
      ...source,
      model: { ...source.model, name: "../Gyoza" },
      version: { ...source.version, name: "a/b\\c" },
      recipe: { name: "../../escape", text: RECIPE },
      parents: [{ name: "/etc/passwd", recipe: { name: "/etc/passwd", text: RECIPE } }],
      images: [{ path: image }],
    };
    const out = join(dir, "out");
    const manifest = await publishVersion(hostile, { dir: out, variants: ["fp32-full"] });
    expect(manifest.recipes).toEqual(["recipes/escape.yaml", "recipes/etc-passwd.yaml"]);
    expect(manifest.files.find((file) => file.role === "fp32-full")?.name).toBe(
      "Gyoza-a-b-c-fp32-full.safetensors",
    );
    expect(manifest.images.map((file) => file.name)).toEqual(["images/model.png"]);
    expect((await readdir(dir)).sort()).toEqual(["models", "out"]);
    for (const name of [...manifest.recipes, ...manifest.images.map((file) => file.name)]) {
      expect(await exists(join(out, name))).toBe(true);
    }
  });
});
