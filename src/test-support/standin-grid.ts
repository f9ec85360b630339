import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { startComfyStandin } from "./comfyui-standin.js";
import { runCli } from "./run-cli.js";

export interface StandinGrid {
  /** The grid folder (grid.json, grid.png, cells/, recipes/). */
  out: string;
  /** `gyoza grid --json`'s answer. */
  result: {
    merges: number;
    generated: number;
    failed: number;
    cells: { labels: string[]; status: string }[];
  };
}

/**
 * A real 2×2 grid (`--x OUT03=0,0.5 --y clip_skip=1,2`) made by `gyoza grid` through the ComfyUI
 * stand-in from two tiny synthetic checkpoints in `dir/models`: what the serve tests and the Grids
 * tab's browser test look at. With `failFirst`, the first generated image fails with that message
 * (a failed cell). The caller points GYOZA_CACHE_DIR into a temp dir (useTempDirWithHashCache).
 */
export async function makeStandinGrid(
  dir: string,
  options: { out?: string; failFirst?: string } = {},
): Promise<StandinGrid> {
  const out = options.out ?? join(dir, "grids", "tiny-mix");
  await mkdir(join(dir, "models"), { recursive: true });
  await mkdir(join(dir, "comfy-models"), { recursive: true });
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
  const recipeFile = join(dir, "mix.yaml");
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
  const standin = await startComfyStandin({ modelFolder: join(dir, "comfy-models"), stepDelayMs: 0 });
  try {
    if (options.failFirst) standin.failNextExecution("3", options.failFirst);
    const config = join(dir, "gyoza.yaml");
    await writeFile(
      config,
      `backends:\n  comfy:\n    kind: comfyui\n    url: ${standin.url}\n    model_folder: comfy-models\n`,
    );
    const run = await runCli(
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
      config,
      "--out",
      out,
      "--json",
    );
    if (!run.stdout.trim().startsWith("{")) throw new Error(`gyoza grid failed (${run.code}): ${run.stderr}`);
    return { out, result: JSON.parse(run.stdout) };
  } finally {
    await standin.close();
  }
}
