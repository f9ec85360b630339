/**
 * Merge speed against the raw I/O floor, measured in the same run (cold cache every run):
 *  1. two full-size SD 1.5 fp16 checkpoints merged with a block-weight preset (COSINE), with the
 *     native and the WebAssembly kernel, input hashes (for the provenance) from the hash cache as a
 *     second merge of the same models has them, and once with the inputs hashed alongside;
 *  2. the three-input GyozaMix recipe (reverse-cosine composition, cosine texture, VAE bake, prune, fp16);
 *  3. the same A+B merge with torch `.ckpt` inputs (the synthetic writer lays them out like torch.save)
 *     written as safetensors and as `.ckpt`, and safetensors inputs written as `.ckpt`: each against
 *     the floor of its own inputs.
 * The floor reads every input while writing an output of the same size, concurrently, fsync at the end,
 * in a Node child process started like gyoza's (bench/io-floor.ts), so both include a cold start-up.
 * It is taken twice: writing through the page cache (the issue's definition) and with O_DIRECT like
 * gyoza itself writes (stricter: the page-cache copy is the costliest part of writing on small VMs).
 * This disk's write speed varies from run to run, so floor and runs alternate and each keeps its best.
 * Before every timed run the same amount of memory is touched and the page cache dropped (coldStart in
 * bench/io-floor.ts: on VMs that return free memory to the host, first touches are costly).
 *
 *   npm run bench:merge [-- --dir DIR] [--rounds N] [--only safetensors|ckpt]
 *   (inputs are generated once into DIR and reused; --only runs the rows of one group and their floors)
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChildRun, ensureSynthetic, ratio, runCli } from "./bench-support.js";
import { coldStart, dropPageCache, ioFloorSeconds } from "./io-floor.js";

const argument = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};

async function main(): Promise<void> {
  const dir = argument("--dir") ?? "/tmp/gyoza-bench";
  const rounds = Number(argument("--rounds") ?? 3);
  const only = argument("--only");
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
  const aCkpt = join(dir, "a-fp16.ckpt");
  const bCkpt = join(dir, "b-fp16.ckpt");
  await ensureSynthetic(a, sd15(1));
  await ensureSynthetic(b, sd15(2));
  await ensureSynthetic(c, sd15(3));
  await ensureSynthetic(aCkpt, sd15(1), "ckpt");
  await ensureSynthetic(bCkpt, sd15(2), "ckpt");
  await ensureSynthetic(
    vae,
    { layout: "sd1-ldm", size: "full", dtype: "F32", seed: 4, vaeOnly: true },
    "ckpt",
  );
  const out = join(dir, "out.safetensors");
  const outCkpt = join(dir, "out.ckpt");
  if (!dropPageCache()) process.stdout.write("cannot drop the page cache (needs root): timings are warm\n");
  const recipe = join(dir, "gyozamix.yaml");
  await writeFile(recipe, gyozamixRecipe(a, b, c, vae, out));

  // A hash cache that already knows the inputs, as after the first merge of the same models.
  const warmCache = await mkdtemp(join(tmpdir(), "gyoza-bench-cache-"));
  await runCli(["hash", a, b, c, vae, aCkpt, bCkpt, "--algo", "sha256,autov3,autov1", "--json"], {
    GYOZA_CACHE_DIR: warmCache,
  });
  const coldCache = async () => mkdtemp(join(tmpdir(), "gyoza-bench-cache-"));

  const size = (await stat(a)).size;
  // Each row's floor reads that row's inputs (the .ckpt inputs are a zip around the same tensor bytes).
  const floorInputs = {
    two: { label: "2 inputs", inputs: [a, b] },
    three: { label: "3 inputs + VAE", inputs: [a, b, c, vae] },
    twoCkpt: { label: "2 .ckpt inputs", inputs: [aCkpt, bCkpt] },
  };
  type FloorName = keyof typeof floorInputs;
  interface Measure {
    label: string;
    short: string;
    group: "safetensors" | "ckpt";
    floor: FloorName;
    run: (cache: () => Promise<string>) => Promise<ChildRun>;
  }
  const allMeasures: Measure[] = [
    {
      label: "merge A+B COSINE, native kernel, input hashes cached",
      short: "A+B native",
      group: "safetensors",
      floor: "two",
      run: () => merge("native", warmCache),
    },
    {
      label: "merge A+B COSINE, wasm kernel, input hashes cached",
      short: "A+B wasm",
      group: "safetensors",
      floor: "two",
      run: () => merge("wasm", warmCache),
    },
    {
      label: "merge A+B COSINE, native kernel, inputs hashed alongside",
      short: "A+B hashing inputs",
      group: "safetensors",
      floor: "two",
      run: async (fresh) => merge("native", await fresh()),
    },
    {
      label: "GyozaMix recipe (3 inputs + VAE bake, one pass), input hashes cached",
      short: "GyozaMix",
      group: "safetensors",
      floor: "three",
      run: () => runCli(["merge", recipe, "--json"], { GYOZA_CACHE_DIR: warmCache }),
    },
    {
      label: "merge A+B COSINE, .ckpt inputs → safetensors, native kernel, input hashes cached",
      short: "ckpt → safetensors",
      group: "ckpt",
      floor: "twoCkpt",
      run: () => merge("native", warmCache, [aCkpt, bCkpt], out),
    },
    {
      label: "merge A+B COSINE, .ckpt inputs → .ckpt, native kernel, input hashes cached",
      short: "ckpt → ckpt",
      group: "ckpt",
      floor: "twoCkpt",
      run: () => merge("native", warmCache, [aCkpt, bCkpt], outCkpt),
    },
    {
      label: "merge A+B COSINE, safetensors inputs → .ckpt, native kernel, input hashes cached",
      short: "safetensors → ckpt",
      group: "ckpt",
      floor: "two",
      run: () => merge("native", warmCache, [a, b], outCkpt),
    },
  ];
  const measures = allMeasures.filter((measure) => !only || measure.group === only);
  if (measures.length === 0) throw new Error(`--only ${only}: no such group (safetensors, ckpt)`);
  async function merge(kernel: string, cache: string, inputs = [a, b], output = out) {
    return runCli(
      [
        "merge",
        ...inputs,
        "--alpha",
        "COSINE",
        "--dtype",
        "fp16",
        "-o",
        output,
        "--json",
        "--kernel",
        kernel,
      ],
      {
        GYOZA_CACHE_DIR: cache,
      },
    );
  }
  const floorNames = [...new Set(measures.map((measure) => measure.floor))];
  // the most memory any timed run fills: the inputs in the page cache, and the output (buffered floor)
  const inputPaths = new Set([
    ...floorNames.flatMap((name) => floorInputs[name].inputs),
    ...(measures.some((m) => m.floor === "three") ? [vae] : []),
  ]);
  const footprint =
    (await Promise.all([...inputPaths].map(async (path) => (await stat(path)).size))).reduce(
      (x, y) => x + y,
    ) + size;
  const cold = () => coldStart(footprint);
  // every run's seconds, kept for the bests and the medians: each floor buffered and with O_DIRECT
  const floorRuns = new Map(
    floorNames.map((name) => [name, { buffered: [] as number[], direct: [] as number[] }]),
  );
  const floorOf = (name: FloorName) => floorRuns.get(name)!;
  const best = (runs: readonly number[]) => Math.min(...runs);
  const runs = measures.map((): number[] => []);
  const peakRssMb = measures.map(() => 0);
  const floorLine = (pick: (runs: number[]) => number, which: "buffered" | "direct") =>
    floorNames
      .map((name) => `${floorInputs[name].label}: ${pick(floorOf(name)[which]).toFixed(2)} s`)
      .join("; ");
  for (let round = 0; round < rounds; round++) {
    for (const name of floorNames) {
      cold();
      floorOf(name).buffered.push(await ioFloorSeconds(floorInputs[name].inputs, out, size));
      cold();
      floorOf(name).direct.push(await ioFloorSeconds(floorInputs[name].inputs, out, size, true));
    }
    process.stdout.write(
      `round ${round + 1}: best floors so far: ${floorLine(best, "buffered")} (O_DIRECT ${floorLine(best, "direct")})\n`,
    );
    for (const [i, measure] of measures.entries()) {
      await rm(out, { force: true });
      await rm(outCkpt, { force: true });
      cold();
      const run = await measure.run(coldCache);
      runs[i]!.push(run.seconds);
      peakRssMb[i] = Math.max(peakRssMb[i]!, run.maxRssMb);
      process.stdout.write(
        `round ${round + 1}: ${measure.label}: ${run.seconds.toFixed(2)} s${breakdown(run)}\n`,
      );
    }
  }
  await rm(out, { force: true });
  await rm(outCkpt, { force: true });
  const rows = [
    `best of ${rounds} rounds, cold page cache every run (after touching ${(footprint / 1e9).toFixed(1)} GB of memory)`,
    `I/O floor, ${floorLine(best, "buffered")}`,
    `I/O floor with O_DIRECT writes, ${floorLine(best, "direct")}`,
    ...measures.map((measure, i) => {
      const { buffered, direct } = floorOf(measure.floor);
      const seconds = best(runs[i]!);
      return `${measure.label}: ${seconds.toFixed(2)} s = ${ratio(seconds, best(buffered))} the floor (${ratio(seconds, best(direct))} the O_DIRECT floor), peak RSS ${peakRssMb[i]!.toFixed(0)} MB`;
    }),
    // the disk's speed drifts between rounds: each run against its own round's floor, then the median
    `per-round ratios (each run over the floor taken in the same round; median, range): ${measures
      .map((measure, i) => {
        const floors = floorOf(measure.floor).buffered;
        const ratios = runs[i]!.map((seconds, round) => seconds / floors[round]!);
        return `${measure.short} ${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
      })
      .join("; ")}`,
    // this disk's speed varies by tens of percent from one run to the next: medians, beside the bests
    `medians: I/O floor, ${floorLine(median, "buffered")}; ${measures
      .map((measure, i) => {
        const floor = median(floorOf(measure.floor).buffered);
        return `${measure.short} ${median(runs[i]!).toFixed(2)} s (${ratio(median(runs[i]!), floor)})`;
      })
      .join("; ")}`,
  ];
  process.stdout.write(`\n${rows.join("\n")}\n`);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** "(inputs 1.9 s, output 0.7 s, compute 1.0 s, finish 0.2 s)" from a merge's --json timings. */
function breakdown(run: ChildRun): string {
  try {
    const { timings } = JSON.parse(run.stdout) as { timings?: Record<string, number> };
    if (!timings) return "";
    const parts = ["inputs", "output", "compute", "finish"].map(
      (name) => `${name} ${(timings[name] ?? Number.NaN).toFixed(2)} s`,
    );
    // what the process spent outside the merge itself: Node and CLI start-up, opening the inputs
    // (unpickling a .ckpt), planning, and exit
    const outside = run.seconds - (timings.total ?? Number.NaN);
    return ` (start-up and exit ${outside.toFixed(2)} s; waiting for ${parts.slice(0, 2).join(", ")}; ${parts.slice(2).join(", ")})`;
  } catch {
    return "";
  }
}

function gyozamixRecipe(a: string, b: string, c: string, vae: string, out: string): string {
  return `gyoza: 1
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
`;
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
