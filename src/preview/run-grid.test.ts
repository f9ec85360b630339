import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ComfyUIBackend } from "../backends/comfyui-client.js";
import type { GenerationParams } from "../backends/types.js";
import { readImageMetadata } from "../image/read-image-metadata.js";
import { BufferByteSource } from "../io/byte-source.js";
import { loadRecipe, type Recipe, recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { type ComfyStandin, startComfyStandin } from "../test-support/comfyui-standin.js";
import { type GridAxis, parseGridAxis } from "./grid-axes.js";
import { type GridEvent, readGridIndex, runGrid } from "./run-grid.js";

let dir: string;
let recipe: Recipe;
let standin: ComfyStandin;
let modelFolder: string;
let savedCacheDir: string | undefined;

const PARAMS: GenerationParams = {
  prompt: "1girl, smile",
  negativePrompt: "lowres",
  seed: 1,
  steps: 4,
  cfg: 7,
  sampler: "Euler a",
  scheduler: "Automatic",
  width: 64,
  height: 64,
  clipSkip: 2,
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-grid-"));
  savedCacheDir = process.env.GYOZA_CACHE_DIR;
  process.env.GYOZA_CACHE_DIR = join(dir, "cache");
  await writeSyntheticCheckpoint(join(dir, "a.safetensors"), {
    layout: "sd1-ldm",
    size: "tiny",
    dtype: "F16",
    seed: 1,
  });
  await writeSyntheticCheckpoint(join(dir, "b.safetensors"), {
    layout: "sd1-ldm",
    size: "tiny",
    dtype: "F16",
    seed: 2,
  });
  recipe = recipeFromData(
    {
      gyoza: 1,
      inputs: { a: { path: "a.safetensors" }, b: { path: "b.safetensors" } },
      steps: { mix: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.5 } },
      output: { path: "out.safetensors", metadata: "hashes", title: "TinyMix" },
    },
    { sourceName: "test" },
  );
});
afterAll(async () => {
  if (savedCacheDir === undefined) delete process.env.GYOZA_CACHE_DIR;
  else process.env.GYOZA_CACHE_DIR = savedCacheDir;
  await rm(dir, { recursive: true, force: true });
});

let run = 0;
beforeEach(async () => {
  run++;
  modelFolder = join(dir, `models-${run}`);
  await mkdir(modelFolder);
  standin = await startComfyStandin({ modelFolder, stepDelayMs: 1 });
});
afterEach(async () => {
  await standin.close();
});

function backend() {
  return new ComfyUIBackend({
    name: "comfy",
    kind: "comfyui",
    url: standin.url,
    modelFolder,
    modelPrefix: "",
    headers: {},
    timeoutSeconds: 30,
  });
}

function axes(...texts: string[]): GridAxis[] {
  const letters = ["x", "y", "z"] as const;
  return texts.map((text, i) =>
    parseGridAxis(letters[i]!, text, { recipe, outputStep: "mix", family: "sd1", cwd: dir }),
  );
}

function options(
  out: string,
  gridAxes: GridAxis[],
  extra: { signal?: AbortSignal; onEvent?: (event: GridEvent) => void } = {},
) {
  return {
    recipe,
    recipeBaseDir: dir,
    family: "sd1" as const,
    outputStep: "mix",
    axes: gridAxes,
    params: PARAMS,
    backend: backend(),
    outDir: out,
    title: "TinyMix",
    ...extra,
  };
}

const merged = async () =>
  (await readdir(modelFolder)).filter((name) => /^gyoza-[0-9a-f]{12}\.safetensors$/.test(name));

describe("gyoza grid (runGrid) against the ComfyUI stand-in", () => {
  it("merges each distinct recipe once, generates every cell and writes a complete index", async () => {
    const out = join(dir, "grid-full");
    const result = await runGrid(options(out, axes("alpha=0.2,0.8", "seed=1,2,3")));
    expect(result.merges).toBe(2);
    expect(await merged()).toHaveLength(2);
    expect(standin.prompts).toHaveLength(6);
    expect(result.generated).toBe(6);
    const index = (await readGridIndex(join(out, "grid.json")))!;
    expect(index.cells).toHaveLength(6);
    expect(index.axes.map((axis) => axis.labels)).toEqual([
      ["alpha = 0.2", "alpha = 0.8"],
      ["seed = 1", "seed = 2", "seed = 3"],
    ]);
    const keys = new Set(index.cells.map((cell) => cell.recipeKey));
    expect(keys.size).toBe(2);
    for (const cell of index.cells) {
      expect(cell.status).toBe("done");
      expect(cell.image).toBe(`cells/${cell.x}_${cell.y}_${cell.z}.png`);
      expect(cell.params.seed).toBe([1, 2, 3][cell.y]);
      expect(cell.autov3).toMatch(/^[0-9a-f]{64}$/);
      const bytes = await readFile(join(out, cell.image!));
      const meta = await readImageMetadata(new BufferByteSource(bytes));
      expect(JSON.stringify(meta)).toContain(`Seed: ${cell.params.seed}`);
      expect(JSON.stringify(meta)).toContain(cell.recipeKey!);
      const cellRecipe = loadRecipe(await readFile(join(out, cell.recipeFile!), "utf8"));
      expect(cellRecipe.steps.mix!.alpha).toBe([0.2, 0.8][cell.x]);
    }
    const grid = await sharp(join(out, "grid.png")).metadata();
    expect(grid.width).toBeGreaterThan(2 * 64);
    expect(grid.height).toBeGreaterThan(3 * 64);
  });

  it("records a failing cell with the backend's reason and finishes the rest", async () => {
    const out = join(dir, "grid-fail");
    standin.failNextExecution("5", "CUDA out of memory");
    const result = await runGrid(options(out, axes("alpha=0.3", "seed=1,2")));
    expect(result.failed).toBe(1);
    const index = (await readGridIndex(join(out, "grid.json")))!;
    const failed = index.cells.filter((cell) => cell.status === "failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error).toMatch(/CUDA out of memory/);
    expect(index.cells.filter((cell) => cell.status === "done")).toHaveLength(1);
  });

  it("keeps finished cells when interrupted and resumes without redoing them", async () => {
    const out = join(dir, "grid-resume");
    const controller = new AbortController();
    const gridAxes = axes("alpha=0.1,0.9", "seed=1,2");
    await expect(
      runGrid(
        options(out, gridAxes, {
          signal: controller.signal,
          onEvent: (event) => {
            if (event.type === "cell" && event.done === 2) controller.abort(new Error("Ctrl-C"));
          },
        }),
      ),
    ).rejects.toThrow();
    const partial = (await readGridIndex(join(out, "grid.json")))!;
    expect(partial.cells.filter((cell) => cell.status === "done")).toHaveLength(2);
    const promptsBefore = standin.prompts.length;
    const result = await runGrid(options(out, gridAxes));
    expect(result.generated).toBe(2);
    expect(standin.prompts.length - promptsBefore).toBe(2);
    expect(result.merges).toBe(1);
    expect(await merged()).toHaveLength(2);
    const index = (await readGridIndex(join(out, "grid.json")))!;
    expect(index.cells.map((cell) => cell.status)).toEqual(["done", "done", "done", "done"]);
    // the first run's cells are the same records (not regenerated)
    for (const cell of partial.cells) {
      expect(index.cells.find((other) => other.x === cell.x && other.y === cell.y)!.imageSha256).toBe(
        cell.imageSha256,
      );
    }
  });

  it("refuses to resume into a folder that holds another grid", async () => {
    const out = join(dir, "grid-other");
    await runGrid(options(out, axes("alpha=0.4")));
    await expect(runGrid(options(out, axes("alpha=0.6")))).rejects.toThrow(/holds another grid/);
  });
});
