import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { runRecipe } from "../engine/run-recipe.js";
import { formatInfotext } from "../image/index.js";
import { loadKernel } from "../kernels/index.js";
import {
  addToLibrary,
  fileIdOf,
  groupFiles,
  LibraryStore,
  modelPage,
  openLibrary,
  setVersionFields,
} from "../library/index.js";
import {
  type ModelPageData,
  pageDataFromView,
  type WrittenModelPage,
  writeModelPage,
} from "../page/index.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { loadRecipe, type Recipe } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { renderDemoImage } from "./demo-images.js";

const GYOZAMIX_RECIPE = new URL("../../src/recipe/examples/gyozamix.yaml", import.meta.url);

/** The model name the demo library groups its merges under. */
export const DEMO_MODEL = "GyozaMix";

export interface DemoLibraryOptions {
  /** Synthetic model size: tiny (widths ÷ 16, the demo) or micro (÷ 64, tests). */
  size?: "tiny" | "micro";
  /** Sample images per version. */
  imagesPerVersion?: number;
  /** Sample image size in pixels (width × height). */
  imageSize?: [number, number];
  onProgress?: ProgressListener;
  /** One line per step, for the demo's output. */
  say?: (line: string) => void;
}

export interface DemoLibrary {
  dir: string;
  libraryPath: string;
  /** Merged outputs per version, newest version first. */
  versions: { name: string; files: string[]; images: string[] }[];
  data: ModelPageData;
  page: WrittenModelPage;
}

/**
 * `npm run demo:library` and the model page test: tiny synthetic SD 1.5 models, the GyozaMix recipe
 * run twice (v1: REVERSE_COSINE composition / COSINE final, fp16; v2: a SMOOTHSTEP final, fp16
 * pruned and fp32 full), sample PNGs whose `parameters` name each merge's hash as A1111 writes it,
 * a library of the outputs and images (`library add`), the merges grouped into one model with two
 * versions (`library group`, `library set`), and its model page, all inside `dir`.
 */
export async function buildDemoLibrary(dir: string, options: DemoLibraryOptions = {}): Promise<DemoLibrary> {
  const root = resolve(dir);
  const size = options.size ?? "tiny";
  const say = options.say ?? (() => {});
  const onProgress = options.onProgress ?? noProgress;
  for (const sub of ["models", "vae", "out", "images"]) await mkdir(join(root, sub), { recursive: true });

  const sources: [string, number][] = [
    ["models/anime-detail.safetensors", 1],
    ["models/composition.safetensors", 2],
    ["models/texture-tuned.safetensors", 3],
  ];
  for (const [file, seed] of sources) {
    await writeSyntheticCheckpoint(join(root, file), {
      layout: "sd1-ldm",
      size,
      dtype: "F32",
      seed,
      ema: seed === 3,
    });
  }
  await writeSyntheticCheckpoint(
    join(root, "vae/kl-f8-anime2.ckpt"),
    { layout: "sd1-ldm", size, dtype: "F32", seed: 4, vaeOnly: true },
    "ckpt",
  );
  say(`made 3 synthetic SD 1.5 models (${size}) and a VAE in ${root}`);

  const base = loadRecipe(await readFile(GYOZAMIX_RECIPE, "utf8"), { sourceName: "gyozamix.yaml" });
  const kernel = await loadKernel();
  const plans: { name: string; outputs: [string, Recipe][] }[] = [
    {
      name: "v1",
      outputs: [
        [
          "out/gyozamix-v1-fp16.safetensors",
          withOutput(base, "out/gyozamix-v1-fp16.safetensors", "GyozaMix v1"),
        ],
      ],
    },
    {
      name: "v2",
      outputs: [
        [
          "out/gyozamix-v2-fp16.safetensors",
          withFinalSmoothstep(withOutput(base, "out/gyozamix-v2-fp16.safetensors", "GyozaMix v2")),
        ],
        [
          "out/gyozamix-v2-fp32-full.safetensors",
          withFinalSmoothstep(
            withOutput(base, "out/gyozamix-v2-fp32-full.safetensors", "GyozaMix v2", {
              dtype: "fp32",
              prune: false,
            }),
          ),
        ],
      ],
    },
  ];
  for (const plan of plans) {
    for (const [file, recipe] of plan.outputs) {
      await runRecipe(recipe, { baseDir: root, kernel, onProgress });
      say(`merged ${file}`);
    }
  }

  const libraryPath = join(root, "library.db");
  const db = openLibrary(libraryPath);
  try {
    const store = new LibraryStore(db);
    await addToLibrary(store, [join(root, "out")], { cacheDir: false, onProgress });
    const versions: DemoLibrary["versions"] = [];
    const [width, height] = options.imageSize ?? [512, 768];
    for (const plan of plans) {
      const files = plan.outputs.map(([file]) => join(root, file));
      const hashes = store.hashesOf(fileIdOf(store, files[0]!)!)!;
      const images: string[] = [];
      for (let index = 0; index < (options.imagesPerVersion ?? 2); index++) {
        const seed = 1000 + versions.length * 10 + index;
        const image = join(root, "images", `${plan.name}-${String(index + 1).padStart(5, "0")}-${seed}.png`);
        await writeFile(
          image,
          await renderDemoImage({
            seed,
            width,
            height,
            label: `${DEMO_MODEL} ${plan.name} #${index + 1}`,
            infotext: demoInfotext(
              seed,
              width,
              height,
              hashes.autov2.toLowerCase(),
              basename(files[0]!, ".safetensors"),
            ),
          }),
        );
        images.push(image);
      }
      versions.push({ name: plan.name, files, images });
    }
    await addToLibrary(store, [join(root, "images")], { cacheDir: false, onProgress });
    say(
      `library ${libraryPath}: ${versions.flatMap((v) => v.files).length} merges, ${versions.flatMap((v) => v.images).length} sample images`,
    );

    // v1 a week before v2, so "newest first" has something to order
    const dates = { v1: "2026-11-24T12:00:00.000Z", v2: "2026-12-01T12:00:00.000Z" } as const;
    for (const version of versions) {
      groupFiles(store, version.files, { model: DEMO_MODEL, version: version.name });
      setVersionFields(store, `${DEMO_MODEL}@${version.name}`, {
        createdAt: dates[version.name as keyof typeof dates],
        negativeEmbeddings: ["AuroraNegative"],
        tags: ["anime", "merge", "demo"],
        ...(version.name === "v2"
          ? { description: "Smoother texture transfer (SMOOTHSTEP final step)." }
          : {}),
      });
    }
    const data = pageDataFromView(modelPage(store, DEMO_MODEL));
    const page = await writeModelPage(data, join(root, "page"), { replace: true, onProgress });
    say(`model page ${page.page}`);
    return { dir: root, libraryPath, versions: versions.reverse(), data, page };
  } finally {
    db.close();
  }
}

function withOutput(
  recipe: Recipe,
  path: string,
  title: string,
  overrides: Partial<Recipe["output"]> = {},
): Recipe {
  return { ...recipe, output: { ...recipe.output, path, title, ...overrides } };
}

function withFinalSmoothstep(recipe: Recipe): Recipe {
  return { ...recipe, steps: { ...recipe.steps, final: { ...recipe.steps.final!, alpha: "SMOOTHSTEP" } } };
}

/** Generation data as A1111 writes it for an image made with the merge whose AutoV2 is `modelHash`. */
function demoInfotext(
  seed: number,
  width: number,
  height: number,
  modelHash: string,
  modelName: string,
): string {
  return formatInfotext({
    prompt: "1girl, solo, gyoza stall at night, paper lanterns, steam, detailed background, masterpiece",
    negativePrompt: "lowres, bad anatomy, AuroraNegative",
    parameters: [
      { key: "Steps", value: "28" },
      { key: "Sampler", value: "DPM++ 2M" },
      { key: "Schedule type", value: "Karras" },
      { key: "CFG scale", value: "7" },
      { key: "Seed", value: String(seed) },
      { key: "Size", value: `${width}x${height}` },
      { key: "Model hash", value: modelHash },
      { key: "Model", value: modelName },
      { key: "VAE", value: "kl-f8-anime2.ckpt" },
      { key: "Clip skip", value: "2" },
      { key: "TI hashes", value: "AuroraNegative: 1a2b3c4d5e6f" },
      { key: "Version", value: "v1.10.1" },
    ],
  });
}
