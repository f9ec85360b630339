/**
 * Throughput of the fused f16 weighted sum (`weightedSum(A: F16, B: F16, α) → F16`) for each merge
 * kernel on 256 MiB of input (A and B, 128 MiB each), one thread, best of several runs.
 * GB/s counts the input bytes read (A + B); the output adds half as much again in memory traffic.
 * Ratios are against the TypeScript reference measured in the same run. "GB per CPU-second" divides by
 * the process's CPU time instead of wall time: steadier than GB/s on a machine shared with other work.
 *
 *   npm run bench:kernels            # GYOZA_BENCH_MIB=64 for a smaller run
 */
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createJsKernel } from "../src/kernels/js-kernel.js";
import type { MergeKernel } from "../src/kernels/merge-kernel.js";
import { createNativeKernel, nativeKernelBuilt } from "../src/kernels/native-kernel.js";
import { createWasmKernel } from "../src/kernels/wasm-kernel.js";

/** Input size: large enough that caches do not flatter the numbers. */
const INPUT_MIB = Number(process.env.GYOZA_BENCH_MIB ?? 256);
const RUNS = 3;
const ALPHA = 0.3;

async function loadCandidates(): Promise<MergeKernel[]> {
  const kernels: MergeKernel[] = [createJsKernel()];
  try {
    kernels.push(await createWasmKernel());
  } catch (error) {
    console.log(`wasm: skipped (${(error as Error).message}; run npm run build:wasm)`);
  }
  if (nativeKernelBuilt()) {
    kernels.push(createNativeKernel("scalar"));
    kernels.push(createNativeKernel("best"));
  } else {
    console.log("native: skipped (not built; run npm run build:native)");
  }
  return kernels;
}

/**
 * f16 values shaped like checkpoint weights (roughly normal, σ ≈ 0.05, a few subnormals), built from
 * a fixed seed so every run merges the same numbers.
 */
function weightLikeHalves(count: number, seed: number): Uint8Array {
  const values = new Float32Array(count);
  let state = seed;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296;
  };
  for (let i = 0; i < count; i++) values[i] = (next() + next() + next() - 1.5) * 0.1;
  const halves = new Uint8Array(count * 2);
  createJsKernel().fromFloat32(values, "F16", halves);
  return halves;
}

async function main(): Promise<void> {
  const elements = (INPUT_MIB * 1024 * 1024) / 4;
  const a = weightLikeHalves(elements, 1);
  const b = weightLikeHalves(elements, 2);
  const out = new Uint8Array(elements * 2);
  const kernels = await loadCandidates();
  const labels = [
    "js (TypeScript reference)",
    "wasm (WebAssembly SIMD)",
    "native (portable C)",
    "native (AVX2+F16C)",
  ];
  console.log(
    `fused f16 weighted sum, α = ${ALPHA}, ${INPUT_MIB} MiB of input, best of ${RUNS} runs, 1 thread`,
  );
  let baseline = 0;
  let referenceDigest = "";
  for (const [index, kernel] of kernels.entries()) {
    let best = Number.POSITIVE_INFINITY;
    let bestCpu = Number.POSITIVE_INFINITY;
    for (let run = 0; run < RUNS; run++) {
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      kernel.weightedSum(a, "F16", b, "F16", ALPHA, out, "F16");
      best = Math.min(best, (performance.now() - start) / 1000);
      const cpu = process.cpuUsage(cpuStart);
      bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1e6);
    }
    const gigabytesPerSecond = (a.byteLength + b.byteLength) / best / 1e9;
    const perCpuSecond = (a.byteLength + b.byteLength) / bestCpu / 1e9;
    if (index === 0) baseline = gigabytesPerSecond;
    const digest = createHash("sha256").update(out).digest("hex").slice(0, 16);
    referenceDigest ||= digest;
    const same = digest === referenceDigest ? "same bits" : "DIFFERENT BITS";
    const label =
      (kernel.name === "js" ? labels[0] : kernel.name === "wasm" ? labels[1] : labels[index]) ?? "";
    console.log(
      `${label.padEnd(26)} ${gigabytesPerSecond.toFixed(2).padStart(6)} GB/s  ${(best * 1000).toFixed(0).padStart(6)} ms  ` +
        `×${(gigabytesPerSecond / baseline).toFixed(1).padStart(5)} vs js  ` +
        `(${perCpuSecond.toFixed(2)} GB per CPU-second)  output ${digest} (${same})`,
    );
  }
}

await main();
