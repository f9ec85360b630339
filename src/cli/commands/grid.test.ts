import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImageMetadata, textsByKey } from "../../image/index.js";
import { BufferByteSource } from "../../io/byte-source.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { startA1111Standin } from "../../test-support/a1111-standin.js";
import { type ComfyStandin, startComfyStandin } from "../../test-support/comfyui-standin.js";
import { runCli } from "../../test-support/run-cli.js";

async function pngTexts(path: string): Promise<Record<string, string>> {
  return textsByKey((await readImageMetadata(new BufferByteSource(await readFile(path), path))).texts);
}
let dir: string;
let recipeFile: string;
let configFile: string;
let standin: ComfyStandin;
let savedCacheDir: string | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-grid-cli-"));
  savedCacheDir = process.env.GYOZA_CACHE_DIR;
  process.env.GYOZA_CACHE_DIR = join(dir, "cache");
  await mkdir(join(dir, "models"));
  await mkdir(join(dir, "comfy-models"));
  for (const [name, seed] of [
    ["a", 1],
    ["b", 2],
  ] as const) {
    await writeSyntheticCheckpoint(join(dir, "models", `${name}.safetensors`), {
      layout: "sd1-ldm",
      size: "tiny",
      dtype: "F16",
      seed,
    });
  }
  recipeFile = join(dir, "mix.yaml");
  await writeFile(
    recipeFile,
    [
      "gyoza: 1",
      "inputs:",
      "  a: { path: models/a.safetensors }",
      "  b: { path: models/b.safetensors }",
      "steps:",
      "  mix: { method: weighted_sum, inputs: { a: a, b: b }, alpha: COSINE }",
      "output: { path: mix.safetensors, metadata: hashes, title: TinyMix }",
      "",
    ].join("\n"),
  );
  standin = await startComfyStandin({ modelFolder: join(dir, "comfy-models"), stepDelayMs: 0 });
  configFile = join(dir, "gyoza.yaml");
  await writeFile(
    configFile,
    `backends:\n  comfy:\n    kind: comfyui\n    url: ${standin.url}\n    model_folder: comfy-models\n`,
  );
});
afterAll(async () => {
  await standin.close();
  if (savedCacheDir === undefined) delete process.env.GYOZA_CACHE_DIR;
  else process.env.GYOZA_CACHE_DIR = savedCacheDir;
  await rm(dir, { recursive: true, force: true });
});

describe("gyoza grid", () => {
  it("makes a block × clip-skip grid through the ComfyUI stand-in and resumes as a no-op", async () => {
    const out = join(dir, "grid");
    const args = [
      "grid",
      recipeFile,
      "--x",
      "OUT03=0,0.5",
      "--y",
      "clip_skip=1,2",
      "--prompt",
      "a bowl of gyoza",
      "--size",
      "64x64",
      "--steps",
      "2",
      "--config",
      configFile,
      "--out",
      out,
      "--json",
    ];
    const first = await runCli(...args);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const result = JSON.parse(first.stdout);
    expect(result).toMatchObject({ merges: 2, generated: 4, failed: 0 });
    expect(result.cells.map((cell: { labels: string[] }) => cell.labels)).toContainEqual([
      "OUT03 = 0.5",
      "clip_skip = 2",
    ]);
    const index = JSON.parse(await readFile(join(out, "grid.json"), "utf8"));
    expect(index.cells).toHaveLength(4);
    // every cell image carries ComfyUI's graph and the UI workflow that loads it back into ComfyUI
    const shown = await runCli(
      "image",
      "info",
      "--json",
      ...index.cells.map((c: { image: string }) => join(out, c.image)),
    );
    for (const report of JSON.parse(shown.stdout) as {
      generation: { generator: string };
      texts: { key: string }[];
    }[]) {
      expect(report.generation.generator).toBe("comfyui");
      expect(report.texts.map((text) => text.key)).toEqual(
        expect.arrayContaining(["parameters", "prompt", "workflow"]),
      );
    }
    const cell = index.cells.find((c: { labels: string[] }) => c.labels.includes("clip_skip = 2"));
    const workflow = JSON.parse((await pngTexts(join(out, cell.image))).workflow!);
    const clipLayer = workflow.nodes.find((node: { type: string }) => node.type === "CLIPSetLastLayer");
    expect(clipLayer.widgets_values).toEqual([-2]);
    const again = JSON.parse((await runCli(...args)).stdout);
    expect(again).toMatchObject({ merges: 0, generated: 0, failed: 0 });
  });

  it("refuses an axis value out of range before anything runs, naming the axis (exit 2)", async () => {
    const run = await runCli(
      "grid",
      recipeFile,
      "--x",
      "OUT03=0,1.5",
      "--prompt",
      "x",
      "--config",
      configFile,
      "--out",
      join(dir, "never"),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--x: OUT03 = 1.5: alpha is outside 0\.\.1/);
  });

  it("works against the A1111 stand-in too", async () => {
    await mkdir(join(dir, "a1111-models"));
    const a1111 = await startA1111Standin({ modelFolder: join(dir, "a1111-models"), stepDelayMs: 0 });
    try {
      const config = join(dir, "a1111.gyoza.yaml");
      await writeFile(
        config,
        `backends:\n  forge:\n    kind: a1111\n    url: ${a1111.url}\n    model_folder: a1111-models\n`,
      );
      const run = await runCli(
        "grid",
        recipeFile,
        "--x",
        "preset=COSINE,REVERSE_COSINE",
        "--prompt",
        "x",
        "--size",
        "64x64",
        "--config",
        config,
        "--out",
        join(dir, "grid-a1111"),
        "--json",
      );
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ merges: 2, generated: 2 });
    } finally {
      await a1111.close();
    }
  });
});
