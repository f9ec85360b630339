import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { inspectCheckpoint } from "../arch/inspect-checkpoint.js";
import { formatReport } from "../cli/commands/inspect.js";
import { formatBytes } from "../cli/output.js";
import { progressBar } from "../cli/progress-bar.js";
import { runRecipe } from "../engine/run-recipe.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { loadKernel } from "../kernels/index.js";
import { loadRecipe } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";

/**
 * `npm run demo`: writes tiny synthetic SD 1.5 models (real key names, widths ÷ 16, random values),
 * runs the GyozaMix recipe on them end to end — reverse-cosine composition, cosine texture, VAE bake,
 * prune, fp16, provenance — then inspects the result. Everything lands in ./demo-out.
 */
const GYOZAMIX_RECIPE = new URL("../../src/recipe/examples/gyozamix.yaml", import.meta.url);

async function main(): Promise<void> {
  const dir = resolve(process.argv[2] ?? "demo-out");
  await mkdir(join(dir, "models"), { recursive: true });
  await mkdir(join(dir, "vae"), { recursive: true });
  await mkdir(join(dir, "out"), { recursive: true });
  const say = (line: string) => process.stdout.write(`${line}\n`);

  say(`gyoza demo in ${dir}`);
  const models: [string, number, "safetensors" | "ckpt"][] = [
    ["models/anime-detail.safetensors", 1, "safetensors"],
    ["models/composition.safetensors", 2, "safetensors"],
    ["models/texture-tuned.safetensors", 3, "safetensors"],
  ];
  for (const [file, seed, format] of models) {
    const bytes = await writeSyntheticCheckpoint(
      join(dir, file),
      { layout: "sd1-ldm", size: "tiny", dtype: "F32", seed, ema: seed === 3 },
      format,
    );
    say(
      `  made ${file} (${formatBytes(bytes)}, tiny synthetic SD 1.5, fp32${seed === 3 ? ", with EMA" : ""})`,
    );
  }
  const vaeBytes = await writeSyntheticCheckpoint(
    join(dir, "vae/kl-f8-anime2.ckpt"),
    { layout: "sd1-ldm", size: "tiny", dtype: "F32", seed: 4, vaeOnly: true },
    "ckpt",
  );
  say(`  made vae/kl-f8-anime2.ckpt (${formatBytes(vaeBytes)}, standalone VAE as a torch pickle)`);

  const recipeText = await readFile(GYOZAMIX_RECIPE, "utf8");
  await writeFile(join(dir, "gyozamix.yaml"), recipeText);
  const recipe = loadRecipe(recipeText, { sourceName: "gyozamix.yaml" });
  const kernel = await loadKernel();
  say(`\nrunning gyozamix.yaml (kernel: ${kernel.name})`);
  const started = performance.now();
  const result = await runRecipe(recipe, { baseDir: dir, kernel, onProgress: progressBar() });
  say(
    `  wrote ${result.output} in ${((performance.now() - started) / 1000).toFixed(2)} s: ${result.tensors} tensors ` +
      `(${result.merged} merged, ${result.copied} copied, ${result.pruned} pruned), ${formatBytes(result.bytes)}`,
  );
  say(
    `  AutoV3 ${result.dataSha256?.slice(0, 12)} — recorded in the file as modelspec.hash_sha256 with the full recipe\n`,
  );

  const merged = await openCheckpoint(result.output);
  try {
    process.stdout.write(formatReport(await inspectCheckpoint(merged), false));
  } finally {
    await merged.close();
  }
}

main().catch((error) => {
  process.stderr.write(
    `demo failed: ${error instanceof Error ? ((error as { describe?: () => string }).describe?.() ?? error.stack) : String(error)}\n`,
  );
  process.exitCode = 1;
});
