import { access, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makePngTextChunk } from "../../image/index.js";
import { buildPng } from "../../image/test-support/test-images.js";
import {
  MODEL_FOLDER_FILES as FILES,
  writeModelFolder,
} from "../../library/test-support/write-model-folder.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir = "";
useTempDirWithHashCache("gyoza-publish-cli-", (path) => (dir = path));

interface Manifest {
  dir: string;
  files: { name: string; role: string; type: string | null; hashes: Record<string, string | null> }[];
  images: { name: string; generation: unknown }[];
  notes?: string[];
}

async function library(): Promise<string> {
  const db = join(dir, "library.db");
  await writeModelFolder(join(dir, "models"));
  const added = await runCli("library", "add", join(dir, "models"), "--library", db);
  expect(added.code, added.stderr).toBe(0);
  return db;
}

describe("gyoza publish", () => {
  it("publishes a library version with an fp32 variant (and no fp16 pruned copy of a file that already is one), and civitai.json's hashes are gyoza hash's", async () => {
    const db = await library();
    const out = join(dir, "GyozaMix-v1");
    const run = await runCli(
      "publish",
      "GyozaMix@v1.0",
      "-o",
      out,
      "--fp16-pruned",
      "--fp32",
      "--library",
      db,
      "--json",
    );
    expect(run.code, run.stderr).toBe(0);
    const manifest = JSON.parse(run.stdout) as Manifest;
    expect(manifest.files.map((file) => [file.name, file.role])).toEqual([
      [FILES.checkpoint, "original"],
      ["GyozaMix-v1.0-fp32-pruned.safetensors", "fp32-full"],
    ]);
    // the version's own file already is fp16 pruned: no second copy of it
    expect(manifest.notes).toContain(`${FILES.checkpoint} already is fp16 pruned; no converted copy written`);
    // the preview beside the model is no real PNG: published as it is, with a note
    expect(manifest.images.map((image) => image.name)).toEqual(["images/gyozamix-v1.preview.png"]);
    expect(manifest.notes?.join("\n")).toMatch(
      /images\/gyozamix-v1\.preview\.png: no generation metadata read/,
    );
    expect((await readdir(out)).sort()).toEqual(
      [
        FILES.checkpoint,
        "GyozaMix-v1.0-fp32-pruned.safetensors",
        "README.md",
        "civitai.json",
        "images",
      ].sort(),
    );

    const civitai = JSON.parse(await readFile(join(out, "civitai.json"), "utf8"));
    expect(civitai).toMatchObject({ name: "v1.0", baseModel: "SD 1.5", trainedWords: ["gyoza style"] });
    const hashed = await runCli(
      "hash",
      ...civitai.files.map((file: { name: string }) => join(out, file.name)),
      "--json",
    );
    expect(hashed.code, hashed.stderr).toBe(0);
    const byGyozaHash = JSON.parse(hashed.stdout) as {
      sha256: string;
      autoV2: string;
      autoV3: string;
      blake3: string;
      crc32Civitai: string;
      autoV1: string | null;
    }[];
    expect(civitai.files.map((file: { hashes: Record<string, string | null> }) => file.hashes)).toEqual(
      byGyozaHash.map((hashes) => ({
        AutoV1: hashes.autoV1,
        AutoV2: hashes.autoV2,
        AutoV3: hashes.autoV3,
        SHA256: hashes.sha256,
        CRC32: hashes.crc32Civitai,
        BLAKE3: hashes.blake3,
      })),
    );
    const card = await readFile(join(out, "README.md"), "utf8");
    expect(card).toMatch(
      /^---\n[\s\S]*base_model: stable-diffusion-v1-5\/stable-diffusion-v1-5\n[\s\S]*---\n\n# GyozaMix v1\.0/,
    );
  });

  it("refuses an unknown version with a usage error naming the versions, and creates nothing", async () => {
    const db = join(dir, "library.db");
    const out = join(dir, "nothing");
    const run = await runCli("publish", "GyozaMix@v9", "-o", out, "--library", db);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/GyozaMix has no version v9[\s\S]*fix: .*v1\.0/);
    await expect(access(out)).rejects.toThrow();
  });

  it("refuses an existing non-empty folder unless --force", async () => {
    const db = join(dir, "library.db");
    const out = join(dir, "GyozaMix-v1");
    const again = await runCli("publish", "GyozaMix@v1.0", "-o", out, "--library", db);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/folder is not empty[\s\S]*--force/);
    const forced = await runCli("publish", "GyozaMix@v1.0", "-o", out, "--library", db, "--force");
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/^published GyozaMix v1\.0 → /);
    expect(await readdir(out)).not.toContain("GyozaMix-v1.0-fp32-pruned.safetensors");
  });

  it("publishes a gyoza merge with its recipe, its parents and the sample image that names it by hash", async () => {
    const folder = join(dir, "merged");
    await mkdir(folder);
    const db = join(folder, "library.db");
    const at = (name: string) => join(folder, name);
    for (const [name, seed] of [
      ["anime.safetensors", "1"],
      ["composition.safetensors", "2"],
    ] as const) {
      const synth = await runCli(
        "synth",
        at(name),
        "--arch",
        "sd1",
        "--size",
        "micro",
        "--dtype",
        "fp16",
        "--seed",
        seed,
      );
      expect(synth.code, synth.stderr).toBe(0);
    }
    const merged = await runCli(
      "merge",
      at("anime.safetensors"),
      at("composition.safetensors"),
      "--alpha",
      "COSINE",
      "-o",
      at("mix.safetensors"),
    );
    expect(merged.code, merged.stderr).toBe(0);
    const hashed = JSON.parse((await runCli("hash", at("mix.safetensors"), "--json")).stdout)[0];
    const infotext = `1girl\nNegative prompt: lowres\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 8x8, Model hash: ${hashed.a1111.shorthash}, Model: mix`;
    await writeFile(at("sample.png"), buildPng(8, 8, 0x40, [makePngTextChunk("parameters", infotext)]));
    expect((await runCli("library", "add", folder, "--library", db)).code).toBe(0);

    const run = await runCli("publish", "mix", "-o", at("out"), "--library", db, "--json");
    expect(run.code, run.stderr).toBe(0);
    const manifest = JSON.parse(run.stdout) as Manifest & { recipes: string[] };
    expect(manifest.recipes).toEqual(["recipes/mix.yaml"]);
    expect(manifest.images.map((image) => image.name)).toEqual(["images/sample.png"]);
    const recipe = await readFile(at("out/recipes/mix.yaml"), "utf8");
    expect(recipe).toMatch(/method: weighted_sum/);
    expect(recipe).toContain("anime.safetensors");
    const card = await readFile(at("out/README.md"), "utf8");
    expect(card).toContain("## Made from\n\n- anime.safetensors\n- composition.safetensors\n");
    expect(card).toContain("base_model_relation: merge");
    expect(card).toContain(
      "merge: weighted_sum, alpha COSINE\n├─ a: a (anime.safetensors)\n└─ b: b (composition.safetensors)",
    );
    const civitai = JSON.parse(await readFile(at("out/civitai.json"), "utf8"));
    expect(civitai.model.checkpointType).toBe("Merge");
    expect(civitai.images[0].meta).toMatchObject({
      prompt: "1girl",
      seed: 5,
      "Model hash": hashed.a1111.shorthash,
    });
  });
});
