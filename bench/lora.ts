/**
 * Baking a rank-32 LoRA into a full-size SD 1.5 fp16 model (every attention, feed-forward and
 * proj_in/proj_out weight of the UNet, and q/k/v/out and both MLP weights of each text-encoder layer:
 * 2 · 10⁸ changed weights, ≈ 10 GMAC of up @ down), against a plain copy of the same model measured
 * in the same run (`gyoza convert` to fp16: the same bytes read and written, no arithmetic), with
 * the native and the WebAssembly kernel.
 *
 *   npm run build && npx tsx bench/lora.ts [--dir DIR] [--rounds N] [--rank R] [--warm]
 *
 * The model and LoRA are generated once into DIR (default /tmp/gyoza-bench) and reused. Input hashes
 * (for the provenance) come from a hash cache filled first, as for any second bake of the same files.
 * As root, every timed run starts from a cold page cache (bench/io-floor.ts); `--warm` keeps the
 * files cached instead, which times the arithmetic rather than the disk.
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildLoraFile } from "../src/arch/lora/test-support/build-lora.js";
import { ldmModuleName, modulesFitting } from "../src/arch/lora/test-support/fit-lora.js";
import { syntheticTensors } from "../src/synth/synthetic-model.js";
import { type ChildRun, ensureSynthetic, ratio, runCli } from "./bench-support.js";
import { coldStart, dropPageCache } from "./io-floor.js";

const argument = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};

/** The weights a kohya LoRA trained on "all linear layers" changes in SD 1.5 (UNet attention and ff, text encoder). */
const TARGETS =
  /(attn[12]\.to_(q|k|v|out\.0)|ff\.net\.(0\.proj|2)|proj_in|proj_out|self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$/;

async function main(): Promise<void> {
  const dir = argument("--dir") ?? "/tmp/gyoza-bench";
  const rounds = Number(argument("--rounds") ?? 3);
  const rank = Number(argument("--rank") ?? 32);
  const synth = { layout: "sd1-ldm", size: "full", dtype: "F16", seed: 1 } as const;
  const model = join(dir, "a-fp16.safetensors");
  await ensureSynthetic(model, synth);
  const tensors = syntheticTensors(synth);
  const targets = tensors.filter(
    (tensor) => TARGETS.test(tensor.key) && !tensor.key.startsWith("first_stage_model."),
  );
  const lora = join(dir, `lora-rank${rank}.safetensors`);
  const modules = modulesFitting(
    targets.map((tensor) => ldmModuleName(tensor.key)),
    new Map(tensors.map((tensor) => [tensor.key, tensor])),
    "sd1",
    { rank, alpha: rank / 2 },
  );
  if (!(await stat(lora).catch(() => undefined))) {
    process.stdout.write(`generating ${lora} …\n`);
    await writeFile(lora, buildLoraFile(modules, { dtype: "F16", seed: 7 }));
  }
  const changed = targets.reduce((sum, tensor) => sum + tensor.shape.reduce((a, b) => a * b, 1), 0);
  const out = join(dir, "lora-out.safetensors");
  const warm = process.argv.includes("--warm");
  if (!warm && !dropPageCache())
    process.stdout.write("cannot drop the page cache (needs root): timings are warm\n");

  const cache = await mkdtemp(join(tmpdir(), "gyoza-bench-cache-"));
  const env = { GYOZA_CACHE_DIR: cache };
  await runCli(["hash", model, lora, "--algo", "sha256,autov3,autov1", "--json"], env);
  const [modelBytes, loraBytes] = await Promise.all([stat(model), stat(lora)]).then((s) =>
    s.map((x) => x.size),
  );
  const cold = () => (warm ? undefined : coldStart(2 * modelBytes! + loraBytes!));

  const runs: Record<string, ChildRun & { compute?: number }> = {};
  const keep = (label: string, run: ChildRun & { compute?: number }) => {
    if (!runs[label] || run.seconds < runs[label]!.seconds) runs[label] = run;
  };
  for (let round = 0; round < rounds; round++) {
    cold();
    keep("copy", await runCli(["convert", model, out, "--dtype", "fp16", "--json"], env));
    await rm(out, { force: true });
    for (const kernel of ["native", "wasm"]) {
      cold();
      const run = await runCli(
        ["merge", model, "--lora", `${lora}:0.8`, "--dtype", "fp16", "-o", out, "--json", "--kernel", kernel],
        env,
      );
      keep(kernel, { ...run, compute: JSON.parse(run.stdout).timings?.compute });
      await rm(out, { force: true });
    }
  }
  await rm(cache, { recursive: true, force: true });
  const copy = runs.copy!;
  const macs = changed * rank;
  const lines = [
    "",
    `SD 1.5 fp16 ${(modelBytes! / 1e9).toFixed(2)} GB + rank-${rank} LoRA ${(loraBytes! / 1e6).toFixed(0)} MB: ${modules.length} modules, ${(changed / 1e6).toFixed(0)} M weights changed, ${(macs / 1e9).toFixed(1)} GMAC`,
    `best of ${rounds} rounds each${warm ? ", inputs in the page cache" : process.getuid?.() === 0 ? ", cold cache every run" : ""}`,
    `plain copy (gyoza convert → fp16): ${copy.seconds.toFixed(2)} s, peak RSS ${copy.maxRssMb.toFixed(0)} MB`,
  ];
  for (const kernel of ["native", "wasm"]) {
    const run = runs[kernel]!;
    const compute = run.compute ?? Number.NaN;
    lines.push(
      `bake, ${kernel} kernel: ${run.seconds.toFixed(2)} s = ${ratio(run.seconds, copy.seconds)} the copy; computing ${compute.toFixed(2)} s (${(macs / compute / 1e9).toFixed(1)} GMAC/s), peak RSS ${run.maxRssMb.toFixed(0)} MB`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
