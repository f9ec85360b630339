import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackend } from "../../backends/index.js";
import { detectGeneration, readImageMetadata, textsByKey } from "../../image/index.js";
import { BufferByteSource } from "../../io/byte-source.js";
import { addToLibrary, LibraryStore, modelPage, openLibrary } from "../../library/index.js";
import { runSample } from "../../preview/run-sample.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { type A1111Standin, startA1111Standin } from "../../test-support/a1111-standin.js";
import { backendConfig } from "../../test-support/backend-fixtures.js";
import { type ComfyStandin, startComfyStandin } from "../../test-support/comfyui-standin.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
let modelA: string;
let recipeFile: string;
let promptsFile: string;

// the CLI's hash cache goes inside the temp dir, never the user's ~/.cache/gyoza
useTempDirWithHashCache("gyoza-sample-cli-", (path) => {
  dir = path;
});

beforeAll(async () => {
  await mkdir(join(dir, "models"));
  modelA = join(dir, "models", "base-a.safetensors");
  await writeSyntheticCheckpoint(modelA, { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: 1 });
  await writeSyntheticCheckpoint(join(dir, "models", "base-b.safetensors"), {
    layout: "sd1-ldm",
    size: "tiny",
    dtype: "F16",
    seed: 2,
  });
  recipeFile = join(dir, "mix.yaml");
  await writeFile(
    recipeFile,
    [
      "gyoza: 1",
      "inputs:",
      "  a: { path: models/base-a.safetensors }",
      "  b: { path: models/base-b.safetensors }",
      "steps:",
      "  mix: { method: weighted_sum, inputs: { a: a, b: b }, alpha: 0.3 }",
      "output: { path: mix.safetensors, metadata: hashes }",
      "",
    ].join("\n"),
  );
  promptsFile = join(dir, "prompts.txt");
  await writeFile(
    promptsFile,
    "# test prompts\na bowl of gyoza, steam\n\nnight market, lanterns | blurry, text\n",
  );
});
type Standin = ComfyStandin | A1111Standin;
const kinds = ["comfyui", "a1111"] as const;

async function startStandin(
  kind: (typeof kinds)[number],
  folder: string,
  extra: { cannotSeeFolder?: boolean } = {},
): Promise<Standin> {
  return kind === "comfyui"
    ? startComfyStandin({ modelFolder: folder, stepDelayMs: 0, ...extra })
    : startA1111Standin({ modelFolder: folder, stepDelayMs: 0, ...extra });
}

async function writeConfig(name: string, kind: string, url: string, folder: string): Promise<string> {
  const file = join(dir, `${name}.gyoza.yaml`);
  await writeFile(
    file,
    `backends:\n  ${kind}:\n    kind: ${kind}\n    url: ${url}\n    model_folder: ${folder}\n    timeout_seconds: 30\n`,
  );
  return file;
}

async function texts(path: string) {
  return textsByKey((await readImageMetadata(new BufferByteSource(await readFile(path)))).texts);
}

function generated(standin: Standin): number {
  return "prompts" in standin ? standin.prompts.length : standin.txt2img.length;
}

describe.each(kinds)("gyoza sample against the %s stand-in", (kind) => {
  let folder: string;
  let standin: Standin;
  let config: string;
  beforeAll(async () => {
    folder = join(dir, `${kind}-checkpoints`);
    await mkdir(folder);
    standin = await startStandin(kind, folder);
    config = await writeConfig(kind, kind, standin.url, folder);
  });
  afterAll(async () => {
    await standin.close();
  });

  it("samples a model file: one image per prompt and seed, metadata complete, recorded in the library", async () => {
    const out = join(dir, `${kind}-file-out`);
    const library = join(dir, `${kind}-library.db`);
    const run = await runCli(
      "sample",
      modelA,
      "--prompts",
      promptsFile,
      "--seeds",
      "7,8",
      "--negative",
      "lowres",
      "--steps",
      "4",
      "--cfg",
      "5.5",
      "--sampler",
      "DPM++ 2M",
      "--scheduler",
      "Karras",
      "--clip-skip",
      "2",
      "--size",
      "512x768",
      "--config",
      config,
      "--out",
      out,
      "--library",
      library,
      "--json",
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.images.map((image: { file: string }) => image.file)).toEqual(
      ["p001-s7.png", "p001-s8.png", "p002-s7.png", "p002-s8.png"].map((name) => join(out, name)),
    );
    expect((await readdir(out)).sort()).toEqual(["p001-s7.png", "p001-s8.png", "p002-s7.png", "p002-s8.png"]);
    expect(result.removed).toBe(true); // no --keep: the link gyoza placed is gone again
    expect(
      (await readdir(folder)).filter((name) => name.startsWith("gyoza-") && name.endsWith(".safetensors")),
    ).toEqual([]);

    const found = await texts(join(out, "p002-s8.png"));
    const info = detectGeneration({ parameters: found.parameters! })!;
    expect(info.prompt).toBe("night market, lanterns");
    expect(info.negativePrompt).toBe("blurry, text");
    expect(info.seed).toBe(8);
    expect(info.steps).toBe(4);
    expect(info.cfgScale).toBe(5.5);
    expect(info.sampler).toBe("DPM++ 2M");
    expect(info.scheduler).toBe("Karras");
    expect(info.clipSkip).toBe(2);
    expect([info.width, info.height]).toEqual([512, 768]);
    expect(info.model).toEqual({ name: "base-a", hash: result.autov2 });
    expect(result.autov2).toBe(result.sha256.slice(0, 10));
    if (kind === "comfyui") {
      expect(detectGeneration(found)?.generator).toBe("comfyui"); // graph kept
      // the UI workflow ComfyUI's SaveImage wrote (from our extra_pnginfo) survives gyoza's metadata
      const workflow = JSON.parse(found.workflow!);
      expect(workflow.version).toBe(0.4);
      const sampler = workflow.nodes.find((node: { type: string }) => node.type === "KSampler");
      expect(sampler.widgets_values).toEqual([8, "fixed", 4, 5.5, "dpmpp_2m", "karras", 1]);
      const shown = await runCli("image", "info", "--json", join(out, "p002-s8.png"));
      const [report] = JSON.parse(shown.stdout);
      expect(report.generation.generator).toBe("comfyui");
      expect(report.texts.map((text: { key: string }) => text.key)).toEqual(
        expect.arrayContaining(["parameters", "prompt", "workflow"]),
      );
    }
    expect((await texts(join(out, "p001-s7.png"))).parameters).toContain("Negative prompt: lowres");

    const db = openLibrary(library);
    try {
      const rows = db
        .prepare("SELECT path, seed, model_hash, model_name FROM images ORDER BY path")
        .all() as {
        path: string;
        seed: string;
        model_hash: string;
      }[];
      expect(rows.map((row) => [row.path, row.seed])).toEqual([
        [join(out, "p001-s7.png"), "7"],
        [join(out, "p001-s8.png"), "8"],
        [join(out, "p002-s7.png"), "7"],
        [join(out, "p002-s8.png"), "8"],
      ]);
      const hashes = db
        .prepare("SELECT DISTINCT hash FROM image_resources WHERE kind = 'checkpoint'")
        .all() as { hash: string }[];
      expect(hashes.map((row) => row.hash)).toContain(result.autov2.toUpperCase());
      expect(db.prepare("SELECT path FROM roots").all()).toEqual([{ path: out }]);
    } finally {
      db.close();
    }
  });

  it("samples a recipe: merged into the model folder once, the second run reuses the candidate", async () => {
    const out = join(dir, `${kind}-recipe-out`);
    const args = [
      "sample",
      recipeFile,
      "--prompts",
      promptsFile,
      "--config",
      config,
      "--out",
      out,
      "--no-library",
      "--keep",
      "--json",
    ];
    const first = await runCli(...args);
    expect(first.stderr).toBe("");
    const one = JSON.parse(first.stdout);
    expect(one.reused).toBe(false);
    expect(one.recipeKey).toMatch(/^[0-9a-f]{64}$/);
    expect(one.checkpoint).toBe(`gyoza-${one.autov3.slice(0, 12)}.safetensors`);
    const before = await stat(one.candidate);
    const found = await texts(join(out, "p001-s1.png"));
    expect(found.parameters).toContain(`gyoza recipe: ${one.recipeKey}`);
    expect(found.parameters).toContain(`Model: mix, `);
    expect(found.parameters).toContain(`Model hash: ${one.autov2}`);

    const second = JSON.parse((await runCli(...args)).stdout);
    const after = await stat(second.candidate);
    expect(second.reused).toBe(true);
    expect(second.recipeKey).toBe(one.recipeKey);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it("fails before generating anything when the backend cannot see the model folder, naming the folder", async () => {
    const blindFolder = join(dir, `${kind}-blind`);
    await mkdir(blindFolder);
    const blind = await startStandin(kind, blindFolder, { cannotSeeFolder: true });
    try {
      const blindConfig = await writeConfig(`${kind}-blind`, kind, blind.url, blindFolder);
      const run = await runCli(
        "sample",
        modelA,
        "--prompts",
        promptsFile,
        "--config",
        blindConfig,
        "--out",
        join(dir, `${kind}-blind-out`),
        "--no-library",
      );
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain(`does not read models from ${blindFolder}`);
      expect(generated(blind)).toBe(0);
    } finally {
      await blind.close();
    }
  });
});

describe("gyoza sample and the library", () => {
  it("the images show as sample images of the model version whose file was sampled", async () => {
    const folder = join(dir, "library-checkpoints");
    await mkdir(folder);
    const standin = await startComfyStandin({ modelFolder: folder, stepDelayMs: 0 });
    const library = join(dir, "version-library.db");
    try {
      // a Civitai Helper sidecar makes the file a version of a model
      await writeFile(
        join(dir, "models", "base-a.civitai.info"),
        JSON.stringify({
          id: 9001,
          modelId: 9000,
          name: "v1",
          baseModel: "SD 1.5",
          model: { name: "Base A", type: "Checkpoint" },
        }),
      );
      const db = openLibrary(library);
      await addToLibrary(new LibraryStore(db), [join(dir, "models")], { cacheDir: false });
      db.close();
      const config = await writeConfig("library", "comfyui", standin.url, folder);
      const out = join(dir, "library-out");
      const run = await runCli(
        "sample",
        modelA,
        "--prompts",
        promptsFile,
        "--seeds",
        "3",
        "--config",
        config,
        "--out",
        out,
        "--library",
        library,
      );
      expect(run.code).toBe(0);
      const reopened = openLibrary(library);
      try {
        const version = modelPage(new LibraryStore(reopened), "Base A").versions[0]!;
        expect(version.images.map((image) => image.path).sort()).toEqual([
          join(out, "p001-s3.png"),
          join(out, "p002-s3.png"),
        ]);
        expect(version.images[0]!.generation).toMatchObject({ seed: 3, steps: 20 });
      } finally {
        reopened.close();
      }
    } finally {
      await standin.close();
    }
  });
});

describe("gyoza sample, then gyoza merge of the same recipe", () => {
  it("with SOURCE_DATE_EPOCH the merge is the sampled candidate, so the library shows the samples on its version", async () => {
    const folder = join(dir, "exact-checkpoints");
    const exact = join(dir, "exact");
    await mkdir(folder);
    await mkdir(exact);
    const recipe = join(exact, "exactmix.yaml");
    await writeFile(
      recipe,
      [
        "gyoza: 1",
        "inputs:",
        "  a: { path: ../models/base-a.safetensors }",
        "  b: { path: ../models/base-b.safetensors }",
        "steps:",
        "  mix: { method: weighted_sum, inputs: { a: a, b: b }, alpha: 0.45 }",
        "output: { path: exactmix.safetensors, metadata: hashes }",
        "",
      ].join("\n"),
    );
    const standin = await startComfyStandin({ modelFolder: folder, stepDelayMs: 0 });
    const saved = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = "1700000000";
    const library = join(dir, "exact-library.db");
    try {
      const config = await writeConfig("exact", "comfyui", standin.url, folder);
      const out = join(dir, "exact-out");
      const sampled = await runCli(
        "sample",
        recipe,
        "--prompts",
        promptsFile,
        "--seeds",
        "5",
        "--config",
        config,
        "--out",
        out,
        "--library",
        library,
        "--json",
      );
      expect(sampled.code).toBe(0);
      const { sha256 } = JSON.parse(sampled.stdout);
      const merged = await runCli("merge", recipe);
      expect(merged.code, merged.stderr).toBe(0);
      // the same bytes: the sample images' Model hash is the merged file's AutoV2
      const mergedBytes = await readFile(join(exact, "exactmix.safetensors"));
      expect(createHash("sha256").update(mergedBytes).digest("hex")).toBe(sha256);
      const db = openLibrary(library);
      await addToLibrary(new LibraryStore(db), [exact], { cacheDir: false });
      try {
        const version = modelPage(new LibraryStore(db), "exactmix").versions[0]!;
        expect(version.files.map((file) => file.path)).toEqual([join(exact, "exactmix.safetensors")]);
        expect(version.images.map((image) => image.path).sort()).toEqual([
          join(out, "p001-s5.png"),
          join(out, "p002-s5.png"),
        ]);
      } finally {
        db.close();
      }
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
      await standin.close();
    }
  });
});

describe("gyoza sample, backend faults", () => {
  it("a ComfyUI node error names the node and stops the run", async () => {
    const folder = join(dir, "comfy-error-checkpoints");
    await mkdir(folder);
    const standin = await startComfyStandin({ modelFolder: folder, stepDelayMs: 0 });
    try {
      standin.failNextExecution("3", "Expected all tensors to be on the same device");
      const config = await writeConfig("comfy-error", "comfyui", standin.url, folder);
      const out = join(dir, "comfy-error-out");
      const run = await runCli(
        "sample",
        modelA,
        "--prompts",
        promptsFile,
        "--config",
        config,
        "--out",
        out,
        "--no-library",
      );
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/KSampler|node 3/);
      expect(run.stderr).toContain("Expected all tensors to be on the same device");
      expect(await readdir(out)).toEqual([]);
    } finally {
      await standin.close();
    }
  });

  it("an A1111 error answer is shown in its own words and stops the run", async () => {
    const folder = join(dir, "a1111-error-checkpoints");
    await mkdir(folder);
    const standin = await startA1111Standin({ modelFolder: folder, stepDelayMs: 0 });
    try {
      standin.inject(
        { status: 500, body: { error: "OutOfMemoryError", errors: "CUDA out of memory" } },
        10,
        "/sdapi/v1/txt2img",
      );
      const config = await writeConfig("a1111-error", "a1111", standin.url, folder);
      const out = join(dir, "a1111-error-out");
      const run = await runCli(
        "sample",
        modelA,
        "--prompts",
        promptsFile,
        "--config",
        config,
        "--out",
        out,
        "--no-library",
      );
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain("OutOfMemoryError: CUDA out of memory");
      expect(await readdir(out)).toEqual([]);
    } finally {
      await standin.close();
    }
  });

  it("an interrupted run keeps the images it finished, and leaves no partial file", async () => {
    const folder = join(dir, "a1111-interrupt-checkpoints");
    await mkdir(folder);
    const standin = await startA1111Standin({ modelFolder: folder, stepDelayMs: 0 });
    try {
      const controller = new AbortController();
      const out = join(dir, "interrupt-out");
      await expect(
        runSample({
          backend: createBackend(backendConfig("a1111", standin.url, folder)),
          modelFile: modelA,
          modelName: "base-a",
          prompts: [{ prompt: "one" }, { prompt: "two" }],
          seeds: [1, 2, 3],
          settings: {
            negativePrompt: "",
            steps: 3,
            cfg: 7,
            sampler: "Euler a",
            scheduler: "Automatic",
            clipSkip: 1,
            width: 512,
            height: 512,
          },
          outDir: out,
          hashCacheDir: false,
          onImage: (done) => {
            if (done === 2) controller.abort(new Error("Ctrl-C"));
          },
          signal: controller.signal,
        }),
      ).rejects.toMatchObject({ code: "interrupted" });
      expect((await readdir(out)).sort()).toEqual(["p001-s1.png", "p001-s2.png"]);
      // the run removed the link it placed even though it stopped early
      expect((await readdir(folder)).filter((name) => name.endsWith(".safetensors"))).toEqual([]);
    } finally {
      await standin.close();
    }
  });
});
