import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashBytes } from "../../hash/index.js";
import { makePngTextChunk } from "../../image/png-writer.js";
import { buildCivitaiJpeg, CIVITAI_AIRS } from "../../image/test-support/civitai-image.js";
import { FIXTURE_IMAGE_DIR } from "../../image/test-support/fixture-images.js";
import { buildJpeg, buildPng, buildWebp } from "../../image/test-support/test-images.js";
import { runCli } from "../../test-support/run-cli.js";

let dir: string;
let savedCacheDir: string | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-cli-image-"));
  savedCacheDir = process.env.GYOZA_CACHE_DIR;
  process.env.GYOZA_CACHE_DIR = join(dir, "cache");
});
afterEach(async () => {
  if (savedCacheDir === undefined) delete process.env.GYOZA_CACHE_DIR;
  else process.env.GYOZA_CACHE_DIR = savedCacheDir;
  process.exitCode = undefined;
  await rm(dir, { recursive: true, force: true });
});

const gyoza = (...args: string[]) => runCli(...args);

const fixture = (name: string) => join(FIXTURE_IMAGE_DIR, name);

describe("gyoza image info", () => {
  it("prints each image's generator and parsed fields as JSON", async () => {
    const { code, stdout } = await gyoza(
      "image",
      "info",
      "--json",
      fixture("a1111_enslo_sd-webui_jpg.jpg"),
      fixture("comfyui_enslo_comfyui-animated-webp_webp.webp"),
      fixture("a1111_sdparsers_stealth_png.png"),
    );
    expect(code).toBe(0);
    const [a1111, comfy, stealth] = JSON.parse(stdout);
    expect(a1111.generation).toMatchObject({
      generator: "a1111",
      seed: 3623174757,
      width: 1024,
      model: { hash: "45a21ea00a" },
    });
    expect(comfy.generation).toMatchObject({ generator: "comfyui", clipSkip: 2, sampler: "euler_ancestral" });
    expect(stealth.generation).toMatchObject({ generator: "a1111", prompt: "a circle", seed: 2015833630 });
  });

  it("reports a file that is no image and still describes the others, exiting with 1", async () => {
    const { code, stdout, stderr } = await gyoza(
      "image",
      "info",
      fixture("corrupt_sdparsers_empty_file_png.png"),
      fixture("corrupt_derived_bad_crc_text_chunk_png.png"),
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/empty file, not an image/);
    expect(stdout).toMatch(/warning: CRC mismatch in tEXt at offset 33/);
  });

  it("reads a Civitai generator JPEG: settings, the model and LoRAs by AIR, and the hires pass", async () => {
    const image = join(dir, "civitai.jpeg");
    await writeFile(image, buildCivitaiJpeg());
    const json = await gyoza("image", "info", "--json", image);
    expect(json.code).toBe(0);
    const [report] = JSON.parse(json.stdout);
    expect(report).toMatchObject({ container: "jpeg", width: 768, height: 1152 });
    expect(report.generation).toMatchObject({
      generator: "civitai",
      prompt: "a bowl of gyoza, steam, wooden table",
      negativePrompt: "blurry, lowres",
      sampler: "DPM++ 2M Karras",
      scheduler: "karras",
      seed: 2433638737,
      steps: 25,
      cfgScale: 7,
      width: 512,
      height: 768,
      model: {
        name: CIVITAI_AIRS.checkpoint,
        air: {
          ecosystem: "sd1",
          type: "checkpoint",
          source: "civitai",
          modelId: "4384",
          versionId: "128713",
        },
      },
      loras: [
        { name: CIVITAI_AIRS.detailLora, weight: 0.45, air: { modelId: "64560", versionId: "69190" } },
        { name: CIVITAI_AIRS.styleLora, weight: 0.8, air: { modelId: "150182", versionId: "167845" } },
      ],
      hires: { upscale: 1.5, upscaler: CIVITAI_AIRS.upscaler, steps: 12, denoise: 0.4 },
    });
    const text = await gyoza("image", "info", image);
    expect(text.stdout).toContain(`(JPEG 768x1152, civitai)`);
    expect(text.stdout).toContain(`  Model: ${CIVITAI_AIRS.checkpoint}\n`);
    expect(text.stdout).toContain(
      `  Hires: x1.5 to 768x1152 with ${CIVITAI_AIRS.upscaler}, 12 steps, denoise 0.4\n`,
    );
  });
  it("says in its text report that a summary's Seed: -1 was replaced by the seed the graph ran", async () => {
    const graph = {
      "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "gyozaMix_v32.safetensors" } },
      "3": {
        class_type: "KSampler",
        inputs: { seed: 77, steps: 20, sampler_name: "euler", model: ["4", 0] },
      },
    };
    const summary = "a gyoza\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: -1, Size: 512x512";
    const image = join(dir, "tensorart.png");
    const chunks = [
      makePngTextChunk("parameters", summary),
      makePngTextChunk("prompt", JSON.stringify(graph)),
    ];
    await writeFile(image, buildPng(2, 2, 0, chunks));
    const { stdout } = await gyoza("image", "info", image);
    expect(stdout).toContain("Seed: 77");
    expect(stdout).toContain(
      "  note: seed: parameters says -1 (random); 77 is the seed the ComfyUI graph's KSampler (node 3) used\n",
    );
  });
});

describe("gyoza image copy-meta and strip", () => {
  it("carries metadata onto a re-encoded PNG in place and leaves no temp file behind", async () => {
    const target = join(dir, "resized.png");
    await writeFile(target, buildPng(4, 4));
    const copied = await gyoza("image", "copy-meta", fixture("a1111_sdparsers_cropped_png.png"), target);
    expect(copied.code).toBe(0);
    expect(copied.stdout).toMatch(/carried parameters/);
    const { stdout } = await gyoza("image", "info", "--json", target);
    expect(JSON.parse(stdout)[0].generation).toMatchObject({ generator: "a1111", seed: 235284042 });
    expect(await readdir(dir)).toEqual(["resized.png"]);
  });

  it("writes to --output and leaves the target untouched", async () => {
    const target = join(dir, "target.png");
    const output = join(dir, "out.png");
    const original = buildPng(2, 2);
    await writeFile(target, original);
    expect(
      (await gyoza("image", "copy-meta", fixture("a1111_sdparsers_cropped_jpg.jpg"), target, "-o", output))
        .code,
    ).toBe(0);
    expect(await readFile(target)).toEqual(Buffer.from(original));
    expect(JSON.parse((await gyoza("image", "info", "--json", output)).stdout)[0].generation.generator).toBe(
      "a1111",
    );
  });

  it("refuses to drop EXIF fields silently and leaves the target as it was", async () => {
    const target = join(dir, "target.png");
    const original = buildPng(2, 2);
    await writeFile(target, original);
    const { code, stderr } = await gyoza(
      "image",
      "copy-meta",
      fixture("civitai_enslo_civitai_jpeg.jpg"),
      target,
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/cannot hold exif_software, exif_artist\nfix: .*--allow-loss/);
    expect(await readFile(target)).toEqual(Buffer.from(original));
  });

  it("strips an image in place so that no metadata is left", async () => {
    const image = join(dir, "a.webp");
    await copyFile(fixture("a1111_enslo_sd-webui_webp.webp"), image);
    const stripped = await gyoza("image", "strip", image);
    expect(stripped.stdout).toMatch(/removed exif_user_comment/);
    const info = JSON.parse((await gyoza("image", "info", "--json", image)).stdout)[0];
    expect(info.texts).toEqual([]);
    expect(info.generation).toBeUndefined();
  });

  it("says when a stripped PNG still hides stealth pnginfo in its pixels", async () => {
    const image = join(dir, "stealth.png");
    await copyFile(fixture("a1111_sdparsers_stealth_png.png"), image);
    const { code, stdout, stderr } = await gyoza("image", "strip", image);
    expect(code).toBe(0);
    expect(stdout).toMatch(/no metadata/);
    expect(stderr).toMatch(/still holds stealth_pngcomp data in its pixels/);
  });
});

describe("gyoza image copy-meta -o: the output keeps the target's container", () => {
  const infotext =
    "a gyoza\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 4x4";

  it("refuses to write a PNG target's bytes under a .jpg name, exits with 2 and writes nothing", async () => {
    const source = join(dir, "source.png");
    await writeFile(source, buildPng(4, 4, 0, [makePngTextChunk("parameters", infotext)]));
    const target = join(dir, "resized.png");
    await writeFile(target, buildPng(4, 4));
    const output = join(dir, "x.jpg");
    const { code, stderr } = await gyoza("image", "copy-meta", source, target, "-o", output);
    expect(code).toBe(2);
    expect(stderr).toBe(
      `gyoza: ${output}: the output would be a PNG image (the container of the target ${target}, whose pixels are kept as they are) but its name ends in .jpg (a JPEG name)\nfix: name the output ${join(dir, "x.png")} (.png), or give a JPEG image as the target\n`,
    );
    expect((await readdir(dir)).sort()).toEqual(["resized.png", "source.png"]);
  });

  it("writes a JPEG target under a .jpeg name and a WebP target under a .webp name", async () => {
    const source = join(dir, "source.png");
    await writeFile(source, buildPng(4, 4, 0, [makePngTextChunk("parameters", infotext)]));
    for (const [targetName, bytes, outputName, container] of [
      ["resized.jpg", buildJpeg(4, 4), "out.jpeg", "jpeg"],
      ["resized.webp", buildWebp(4, 4), "out.webp", "webp"],
    ] as const) {
      const target = join(dir, targetName);
      await writeFile(target, bytes);
      const output = join(dir, outputName);
      expect((await gyoza("image", "copy-meta", source, target, "-o", output)).code).toBe(0);
      const [report] = JSON.parse((await gyoza("image", "info", "--json", output)).stdout);
      expect(report.container).toBe(container);
      expect(report.generation).toMatchObject({ prompt: "a gyoza", seed: 9 });
    }
  });
});

describe("gyoza image link", () => {
  it("finds the model and LoRA files an image used by their AutoV2 and AutoV3 hashes through a symlinked folder, ignoring the empty-file hash", async () => {
    const models = join(dir, "models");
    await mkdir(join(models, "Lora"), { recursive: true });
    const checkpoint = randomBytes(4096);
    const lora = Buffer.concat([
      Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from("{}              "),
      randomBytes(1024),
    ]);
    await writeFile(join(models, "gyozaMix_v32.safetensors"), checkpoint);
    await writeFile(join(models, "Lora", "detail.safetensors"), lora);
    await writeFile(join(models, "empty.safetensors"), new Uint8Array(0));
    const checkpointHashes = await hashBytes(checkpoint);
    const loraHashes = await hashBytes(lora);
    const infotext = [
      "a gyoza <lora:detail:0.8>",
      "Negative prompt: blurry",
      `Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: ${checkpointHashes.autoV2!.toLowerCase()}, Model: gyozaMix_v32, Lora hashes: "detail: ${loraHashes.autoV3!.toLowerCase()}", Hashes: {"vae": "e3b0c44298"}`,
    ].join("\n");
    const image = join(dir, "image.png");
    await writeFile(image, buildPng(1, 1, 0, [makePngTextChunk("parameters", infotext)]));
    const linked = join(dir, "linked");
    await symlink(models, linked);
    const { code, stdout } = await gyoza("image", "link", image, "--search", linked, "--json");
    expect(code).toBe(0);
    const [result] = JSON.parse(stdout);
    expect(result.resources).toEqual([
      expect.objectContaining({
        kind: "model",
        matches: [{ file: join(linked, "gyozaMix_v32.safetensors"), via: "AutoV2" }],
        civitaiLinks: true,
      }),
      expect.objectContaining({ kind: "vae", hash: "e3b0c44298", matches: [], civitaiLinks: false }),
      expect.objectContaining({
        kind: "lora",
        name: "detail",
        matches: [{ file: join(linked, "Lora", "detail.safetensors"), via: "AutoV3" }],
      }),
    ]);
  });
});
