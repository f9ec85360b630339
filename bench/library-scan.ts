/**
 * Re-scanning a model library with nothing changed (issue #21's target: 200 files in under 1 s),
 * against the bare folder walk (readdir + stat of every file) measured in the same run.
 *
 *   npm run bench:library                   # 200 files: 1 full-size SD 1.x fp16, 20 micro checkpoints, LoRAs
 *   npm run bench:library -- --full 0       # without the 2 GB full-size file
 *
 * The first scan (identify + hash everything, no hash cache) is printed too, for scale.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { buildLoraFile, SD1_KOHYA_MODULES } from "../src/arch/lora/test-support/build-lora.js";
import {
  LibraryStore,
  openLibrary,
  rescanLibrary,
  scanFolders,
  walkModelFiles,
} from "../src/library/index.js";
import { writeSyntheticCheckpoint } from "../src/synth/write-synthetic.js";

const TOTAL_FILES = 200;
const MICRO_CHECKPOINTS = 20;
const DEFAULT_FULL_SIZE_FILES = 1;
const ROUNDS = 5;
const TARGET_SECONDS = 1;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const fullAt = args.indexOf("--full");
  const fullSize = fullAt >= 0 ? Number(args[fullAt + 1]) : DEFAULT_FULL_SIZE_FILES;
  const dir = await mkdtemp(join(tmpdir(), "gyoza-bench-library-"));
  try {
    const models = join(dir, "models");
    process.stdout.write(`writing ${TOTAL_FILES} model files to ${models} (${fullSize} full-size)\n`);
    await writeFolder(models, fullSize);
    const db = openLibrary(join(dir, "library.db"));
    const store = new LibraryStore(db);
    const first = await timed(() => scanFolders(store, [models], { cacheDir: false }));
    store.addRoot(models);
    process.stdout.write(
      `first scan: ${first.seconds.toFixed(2)} s (${first.value.hashed} hashed, ${first.value.unreadable} unreadable)\n`,
    );
    let bestWalk = Number.POSITIVE_INFINITY;
    let bestRescan = Number.POSITIVE_INFINITY;
    for (let round = 0; round < ROUNDS; round++) {
      bestWalk = Math.min(bestWalk, (await timed(() => walkModelFiles([models]))).seconds);
      const rescan = await timed(() => rescanLibrary(store, { cacheDir: false }));
      if (rescan.value.hashed !== 0) throw new Error(`a re-scan hashed ${rescan.value.hashed} files`);
      bestRescan = Math.min(bestRescan, rescan.seconds);
    }
    db.close();
    process.stdout.write(
      `re-scan, nothing changed (best of ${ROUNDS}): ${(bestRescan * 1000).toFixed(1)} ms; ` +
        `bare walk ${(bestWalk * 1000).toFixed(1)} ms (${(bestRescan / bestWalk).toFixed(2)}× the walk); ` +
        `target < ${TARGET_SECONDS} s: ${bestRescan < TARGET_SECONDS ? "met" : "MISSED"}\n`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function writeFolder(models: string, fullSize: number): Promise<void> {
  await mkdir(join(models, "loras"), { recursive: true });
  for (let index = 0; index < fullSize; index++) {
    const options = { layout: "sd1-ldm", size: "full", dtype: "F16", seed: 100 + index } as const;
    await writeSyntheticCheckpoint(join(models, `full-${index}.safetensors`), options);
  }
  for (let index = 0; index < MICRO_CHECKPOINTS; index++) {
    const options = { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: index + 1 } as const;
    await writeSyntheticCheckpoint(join(models, `micro-${index}.safetensors`), options);
    await writeFile(
      join(models, `micro-${index}.civitai.info`),
      JSON.stringify({
        id: index,
        modelId: 1,
        name: `v${index}`,
        baseModel: "SD 1.5",
        model: { name: "Bench" },
      }),
    );
  }
  for (let index = 0; index < TOTAL_FILES - MICRO_CHECKPOINTS - fullSize; index++) {
    const lora = buildLoraFile(SD1_KOHYA_MODULES, { seed: index + 1 });
    await writeFile(join(models, "loras", `lora-${index}.safetensors`), lora);
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const start = performance.now();
  const value = await work();
  return { value, seconds: (performance.now() - start) / 1000 };
}

await main();
