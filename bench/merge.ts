/**
 * Merge speed against the raw I/O floor, measured in the same run (cold cache each time):
 *  1. two full-size SD 1.5 fp16 checkpoints merged with a block-weight preset (COSINE), native and
 *     WebAssembly kernels;
 *  2. the three-input GyozaMix recipe (reverse-cosine composition, cosine texture, VAE bake, prune, fp16).
 * The floor reads every input while writing an output of the same size, concurrently, fsync at the end.
 *
 *   npm run bench:merge [-- --dir DIR]      (inputs are generated once into DIR and reused)
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureSynthetic, ratio, runCli } from "./bench-support.js";
import { dropPageCache, ioFloorSeconds } from "./io-floor.js";

async function main(): Promise<void> {
  const dirAt = process.argv.indexOf("--dir");
  const dir = dirAt > 0 ? process.argv[dirAt + 1]! : "/tmp/gyoza-bench";
  const sd15 = (seed: number) => ({
    layout: "sd1-ldm" as const,
    size: "full" as const,
    dtype: "F16" as const,
    seed,
  });
  const a = join(dir, "a-fp16.safetensors");
  const b = join(dir, "b-fp16.safetensors");
  const c = join(dir, "c-fp16.safetensors");
  const vae = join(dir, "kl-f8-vae.ckpt");
  await ensureSynthetic(a, sd15(1));
  await ensureSynthetic(b, sd15(2));
  await ensureSynthetic(c, sd15(3));
  await ensureSynthetic(
    vae,
    { layout: "sd1-ldm", size: "full", dtype: "F32", seed: 4, vaeOnly: true },
    "ckpt",
  );
  const out = join(dir, "out.safetensors");
  const cold = dropPageCache();
  if (!cold) process.stdout.write("cannot drop the page cache (needs root): timings are warm\n");

  const rows: string[] = [];
  const floorTwo = await measureFloor([a, b], out, (await stat(a)).size);
  rows.push(`I/O floor, 2 inputs: ${floorTwo.toFixed(2)} s`);
  for (const kernel of ["native", "wasm"]) {
    dropPageCache();
    await rm(out, { force: true });
    const run = await runCli([
      "merge",
      a,
      b,
      "--alpha",
      "COSINE",
      "--dtype",
      "fp16",
      "-o",
      out,
      "--json",
      "--kernel",
      kernel,
    ]);
    const used = JSON.parse(run.stdout).kernel as string;
    rows.push(
      `merge A+B COSINE, ${used} kernel: ${run.seconds.toFixed(2)} s = ${ratio(run.seconds, floorTwo)} the floor, peak RSS ${run.maxRssMb.toFixed(0)} MB`,
    );
  }

  const recipe = join(dir, "gyozamix.yaml");
  await writeFile(
    recipe,
    `gyoza: 1
inputs:
  anime_detail: { path: ${a} }
  composition_model: { path: ${b} }
  texture: { path: ${c} }
steps:
  composition: { method: weighted_sum, inputs: { a: anime_detail, b: composition_model }, alpha: REVERSE_COSINE }
  final: { method: weighted_sum, inputs: { a: texture, b: composition }, alpha: COSINE }
output:
  step: final
  path: ${out}
  dtype: fp16
  prune: true
  vae: { policy: bake, file: ${vae} }
  metadata: full
  title: GyozaMix
`,
  );
  await rm(out, { force: true });
  const floorThree = await measureFloor([a, b, c, vae], out, (await stat(a)).size);
  rows.push(`I/O floor, 3 inputs + VAE: ${floorThree.toFixed(2)} s`);
  dropPageCache();
  const gyozamix = await runCli(["merge", recipe, "--json"], {
    GYOZA_CACHE_DIR: await mkdtemp(join(tmpdir(), "gyoza-bench-cache-")),
  });
  rows.push(
    `GyozaMix recipe (3 inputs, one pass): ${gyozamix.seconds.toFixed(2)} s = ${ratio(gyozamix.seconds, floorThree)} its floor, peak RSS ${gyozamix.maxRssMb.toFixed(0)} MB`,
  );
  await rm(out, { force: true });
  process.stdout.write(`\n${rows.join("\n")}\n`);
}

async function measureFloor(inputs: string[], out: string, bytes: number): Promise<number> {
  dropPageCache();
  return ioFloorSeconds(inputs, out, bytes);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
