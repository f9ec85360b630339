import type { Detection } from "../arch/detect.js";
import type { FileHashes } from "../hash/file-hashes.js";
import { cachedFileHashes, hashFile } from "../hash/index.js";
import type { ReadAhead } from "../io/prefetch-file.js";
import type { Checkpoint } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { builtinMethods, type MethodRegistry } from "../merge/index.js";
import type { MergePlan } from "../plan/merge-plan.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { BufferPool } from "../stream/buffer-pool.js";
import { evaluateOp, type KeyStats } from "../stream/evaluate-op.js";
import { type BoundKey, bindKey, type PlanSources, runPrepasses } from "../stream/index.js";
import { type CachedBytes, type InputReads, prepareInputReads } from "../stream/input-reads.js";
import { plannedReads } from "../stream/prefetch-plan.js";
import { inputOrderOf, type OutputTensor, type WriteTimings, writeOutput } from "../stream/write-output.js";
import { assertNotOverwritingInput } from "./output-plan.js";
import { buildProvenance, hashPlaceholder, type ProvenanceOptions } from "./provenance.js";

/** The input hashes a merge records (provenance). */
const INPUT_HASHES = ["sha256", "autov3", "autov1"] as const;

export interface MergeJob {
  /** What to write, decided from headers (`planMerge`). */
  plan: MergePlan;
  /** The plan's sources' tensors, by the names the plan uses. */
  sources: PlanSources;
  /** The recipe inputs in order (hashed alongside, and their metadata absorbed into the provenance). */
  inputs: readonly { name: string; checkpoint: Checkpoint }[];
  provenance: Omit<ProvenanceOptions, "detection" | "outputPath" | "inputs">;
  /** The detection of the first input (modelspec of the output). */
  detection: Detection;
  methods?: MethodRegistry;
  /** Where the hash cache lives (false: none). */
  hashCacheDir?: string | false;
  /** Stops the merge between chunks: the temp output is removed and the merge rejects ("interrupted"). */
  signal?: AbortSignal;
  /**
   * The kernel's read-ahead (the native addon's): inputs the output reads out of their file order are
   * prefetched with it along the plan (`prefetchOutOfOrderReads`); none without it.
   */
  readAhead?: ReadAhead;
  /**
   * The page-cache probe (the native addon's): cold inputs read front to back whose hashes are cached
   * are read past the cache (src/stream/input-reads.ts); none without it.
   */
  cachedBytes?: CachedBytes;
}

export interface MergeResult {
  output: string;
  bytes: number;
  tensors: number;
  /** sha256 of the output's tensor data (its AutoV3, also in modelspec.hash_sha256). */
  dataSha256?: string;
  architecture: string;
  merged: number;
  copied: number;
  onlyInLaterInputs: { key: string; step: string; from: string }[];
  nonFinite: { key: string; count: number }[];
  inputHashes: Record<string, { sha256: string; autoV3: string }>;
  pruned: number;
  /** The inputs read past the page cache (O_DIRECT: cold, read front to back, hashes cached), by path. */
  readDirectly: string[];
  /** What the user should know that did not stop the merge (a LoRA without alpha …), from the plan. */
  warnings: { code: string; message: string }[];
  /** The LoRAs baked in: step, source (recipe input), ratio, block weights as written, modules. */
  loras: { step: string; source: string; ratio: number; weights: string; modules: number }[];
  /**
   * Where the time went, in seconds: `total` from planning to the renamed output; the rest as
   * WriteTimings says (safetensors outputs only).
   */
  timings: { total: number } & Partial<WriteTimings>;
}

/**
 * Streams a merge plan in one pass: the output header first, then each tensor range flows through
 * the kernels into a temp file that is renamed only when complete. Input hashes (for provenance)
 * are computed alongside and patched into the header at the end.
 */
export async function executeMerge(
  job: MergeJob,
  kernel: MergeKernel,
  onProgress: ProgressListener = noProgress,
): Promise<MergeResult> {
  const started = performance.now();
  const { plan, inputs } = job;
  const output = plan.output;
  const { "@vae": bakedVae, ...named } = plan.sources;
  await assertNotOverwritingInput(output.path, { ...named, ...(bakedVae ? { "baked VAE": bakedVae } : {}) });
  const methods = job.methods ?? builtinMethods;
  const keys: BoundKey[] = plan.keys.map((planned) => ({
    key: planned.key,
    shape: planned.shape,
    op: bindKey(planned, job.sources, methods),
  }));

  // Hash the inputs alongside the merge (the page cache serves both readers); patched in at the end.
  const hashOptions = { algorithms: INPUT_HASHES, cacheDir: job.hashCacheDir ?? false };
  const known = await cachedFileHashes(
    inputs.map((input) => input.checkpoint.path),
    hashOptions,
  );
  const hashing = inputs.map(
    (input, i) => known[i] ?? hashFile(input.checkpoint.path, { ...hashOptions, maxThreads: 1 }),
  );
  for (const pending of hashing) void Promise.resolve(pending).catch(() => {}); // awaited at the end; no unhandled rejection meanwhile
  let reads: InputReads = { direct: new Set(), prefetches: [] };

  const metadata = buildProvenance({
    ...job.provenance,
    detection: job.detection,
    outputPath: output.path,
    inputs: inputs.map((input) => ({
      name: input.name,
      path: input.checkpoint.path,
      metadata: input.checkpoint.metadata,
    })),
  });
  const prepass = await runPrepasses(
    keys,
    plan.steps.map((step) => step.name),
    kernel,
  );
  const pool = new BufferPool(undefined, kernel);
  const stats = new Map<string, KeyStats>();
  const tensors: OutputTensor[] = keys.map((bound, i) => {
    const dtype = plan.keys[i]!.dtype;
    return {
      key: bound.key,
      dtype,
      shape: bound.shape,
      chunks: () => {
        const keyStats = { nonFinite: 0 };
        stats.set(bound.key, keyStats);
        return evaluateOp(bound, dtype, kernel, keyStats, prepass, pool);
      },
    };
  });
  let hashes: FileHashes[] = [];
  let written: Awaited<ReturnType<typeof writeOutput>>;
  try {
    written = await writeOutput(output.path, tensors, {
      format: output.format,
      metadata,
      task: `merge → ${output.path}`,
      onProgress,
      release: (chunk) => pool.release(chunk),
      blockMemory: kernel,
      inputOrder: inputOrderOf(inputs[0]?.checkpoint.tensors ?? new Map()),
      signal: job.signal,
      // cold inputs read front to back (and not hashed alongside) past the page cache; inputs read
      // out of their order prefetched along it
      prepareReads: async (order) => {
        reads = await prepareInputReads(plannedReads(plan, job.sources, order), {
          directCandidates: inputs.filter((_, i) => known[i]).map((input) => input.checkpoint),
          ...(job.cachedBytes ? { cachedBytes: job.cachedBytes } : {}),
          ...(job.readAhead ? { readAhead: job.readAhead } : {}),
        });
        return reads.prefetches;
      },
      finalReplacements: async () => {
        hashes = await Promise.all(hashing);
        return hashReplacements(hashes);
      },
    });
  } finally {
    pool.dispose(); // the kernel's memory back, for its next job
  }
  if (hashes.length === 0) hashes = await Promise.all(hashing);
  const copied = plan.keys.filter((k) => k.op.op === "read" || k.op.op === "arange").length;
  return {
    output: output.path,
    bytes: written.bytes,
    tensors: tensors.length,
    ...(written.dataSha256 ? { dataSha256: written.dataSha256 } : {}),
    architecture: plan.architecture,
    merged: plan.keys.length - copied,
    copied,
    onlyInLaterInputs: [...plan.onlyInLaterInputs],
    nonFinite: [...stats].filter(([, s]) => s.nonFinite > 0).map(([key, s]) => ({ key, count: s.nonFinite })),
    inputHashes: Object.fromEntries(
      inputs.map((input, i) => [
        input.name,
        { sha256: hashes[i]!.sha256!.toLowerCase(), autoV3: (hashes[i]!.autoV3Full ?? "").toLowerCase() },
      ]),
    ),
    pruned: plan.finishing.pruned.length,
    readDirectly: [...reads.direct],
    warnings: plan.warnings.map((warning) => ({ ...warning })),
    loras: plan.loras.map(({ step, source, ratio, weights, modules }) => ({
      step,
      source,
      ratio,
      weights,
      modules,
    })),
    timings: { total: (performance.now() - started) / 1000, ...written.timings },
  };
}

/** The provenance's hash placeholders → the inputs' real hashes (same lengths: patched in place). */
function hashReplacements(hashes: readonly FileHashes[]): Map<string, string> {
  const replacements = new Map<string, string>();
  hashes.forEach((h, i) => {
    replacements.set(hashPlaceholder("sha256", i), h.sha256!.toLowerCase());
    replacements.set(
      hashPlaceholder("autov3", i),
      (h.autoV3Full ?? "").toLowerCase().padEnd(64, "0").slice(0, 64),
    );
    replacements.set(hashPlaceholder("legacy", i), (h.a1111?.modelHash ?? "").padEnd(8, "0").slice(0, 8));
    replacements.set(hashPlaceholder("autov2", i), h.sha256!.slice(0, 10).toLowerCase());
  });
  return replacements;
}
