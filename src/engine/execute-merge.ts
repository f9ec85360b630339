import { type Detection, detectArchitecture } from "../arch/detect.js";
import { assertMergeableKeyLayout } from "../arch/layout-conversion.js";
import { checkVaeFits, VAE_PREFIX, vaeTensorsForBaking } from "../arch/vae.js";
import { GyozaError } from "../errors.js";
import type { FileHashes } from "../hash/file-hashes.js";
import { hashFile } from "../hash/index.js";
import { type DType, isFloatDType } from "../io/dtype.js";
import type { Checkpoint, StoredTensor } from "../io/tensor.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { BufferPool } from "./buffer-pool.js";
import { evaluateKey, type KeyStats } from "./evaluate-key.js";
import { type GraphPlan, type MergeGraph, type PlannedKey, planGraph } from "./merge-graph.js";
import { assertNotOverwritingInput, freshPositionIds, prunedKeep } from "./output-plan.js";
import { runPrepasses } from "./prepass.js";
import { buildProvenance, hashPlaceholder, type ProvenanceOptions } from "./provenance.js";
import { type OutputTensor, outputFormatOf, type WriteTimings, writeOutput } from "./write-output.js";

export type VaePolicy =
  | { policy: "keep-a" }
  | { policy: "take"; input: string }
  | { policy: "merge" }
  | { policy: "bake"; checkpoint: Checkpoint };

export interface MergeOutput {
  path: string;
  dtype?: DType;
  prune?: boolean;
  vae?: VaePolicy;
}

export interface MergeJob {
  graph: MergeGraph;
  /** Input name → path (for hashing and provenance). */
  inputPaths: Readonly<Record<string, string>>;
  output: MergeOutput;
  provenance: Omit<ProvenanceOptions, "detection" | "outputPath" | "inputs">;
  /** Where the hash cache lives (false: none). */
  hashCacheDir?: string | false;
  /** Stops the merge between chunks: the temp output is removed and the merge rejects ("interrupted"). */
  signal?: AbortSignal;
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
  /**
   * Where the time went, in seconds: `total` from planning to the renamed output; the rest as
   * WriteTimings says (safetensors outputs only).
   */
  timings: { total: number } & Partial<WriteTimings>;
}

/** Fails before anything is read when the inputs cannot be merged (SD1 + SDXL, a VAE as a model…). */
export function checkCompatible(inputs: readonly { name: string; checkpoint: Checkpoint }[]): Detection {
  let first: { name: string; detection: Detection } | undefined;
  for (const input of inputs) {
    const detection = detectArchitecture(input.checkpoint.tensors);
    assertMergeableKeyLayout(detection, input.checkpoint.path, input.name);
    if (detection.family !== "sd1" && detection.family !== "sdxl") {
      throw new GyozaError(
        "architecture-mismatch",
        `input "${input.name}" is ${detection.name}, not a model to merge`,
        {
          file: input.checkpoint.path,
          fix:
            detection.family === "vae"
              ? "bake a VAE with output.vae: {policy: bake, file: …}"
              : "merge full SD checkpoints",
        },
      );
    }
    if (!first) first = { name: input.name, detection };
    else if (
      first.detection.family !== detection.family ||
      first.detection.id.endsWith("inpaint") !== detection.id.endsWith("inpaint")
    ) {
      throw new GyozaError(
        "architecture-mismatch",
        `cannot merge "${first.name}" (${first.detection.name}) with "${input.name}" (${detection.name})`,
        { file: input.checkpoint.path, fix: "every input of a merge must have the same architecture" },
      );
    }
  }
  if (!first) throw new GyozaError("usage", "a merge needs at least one input");
  return first.detection;
}

/**
 * Runs a merge graph in one streaming pass: plan from headers, write the output header, then each
 * tensor range flows through the kernels into a temp file that is renamed only when complete.
 * Input hashes (for provenance) are computed alongside and patched into the header at the end.
 */
export async function executeMerge(
  job: MergeJob,
  kernel: MergeKernel,
  onProgress: ProgressListener = noProgress,
): Promise<MergeResult> {
  const started = performance.now();
  const { graph, output } = job;
  const format = outputFormatOf(output.path);
  const vaeFile: Record<string, string> =
    output.vae?.policy === "bake" ? { "baked VAE": output.vae.checkpoint.path } : {};
  await assertNotOverwritingInput(output.path, { ...job.inputPaths, ...vaeFile });
  const detection = checkCompatible(graph.inputs);
  const plan = planGraph(graph);
  const keys = finishKeys(plan, output, detection);

  // Hash the inputs alongside the merge (the page cache serves both readers); patched in at the end.
  const hashing = graph.inputs.map((input) =>
    hashFile(job.inputPaths[input.name]!, {
      algorithms: ["sha256", "autov3", "autov1"],
      cacheDir: job.hashCacheDir ?? false,
      maxThreads: 1,
    }),
  );
  for (const pending of hashing) pending.catch(() => {}); // awaited at the end; no unhandled rejection meanwhile

  const metadata = buildProvenance({
    ...job.provenance,
    detection,
    outputPath: output.path,
    inputs: graph.inputs.map((input) => ({
      name: input.name,
      path: job.inputPaths[input.name]!,
      metadata: input.checkpoint.metadata,
    })),
  });
  const prepass = await runPrepasses(keys, graph.steps, kernel);
  const pool = new BufferPool(undefined, kernel);
  const stats = new Map<string, KeyStats>();
  const tensors: OutputTensor[] = keys.map((planned) => {
    const dtype = outputDtypeOf(planned, output.dtype);
    return {
      key: planned.key,
      dtype,
      shape: planned.shape,
      chunks: () => {
        const keyStats = { nonFinite: 0 };
        stats.set(planned.key, keyStats);
        return evaluateKey(planned, dtype, kernel, keyStats, prepass, pool);
      },
    };
  });
  let hashes: FileHashes[] = [];
  let written: Awaited<ReturnType<typeof writeOutput>>;
  try {
    written = await writeOutput(output.path, tensors, {
      format,
      metadata,
      task: `merge → ${output.path}`,
      onProgress,
      release: (chunk) => pool.release(chunk),
      blockMemory: kernel,
      signal: job.signal,
      finalReplacements: async () => {
        hashes = await Promise.all(hashing);
        const replacements = new Map<string, string>();
        hashes.forEach((h, i) => {
          replacements.set(hashPlaceholder("sha256", i), h.sha256!.toLowerCase());
          replacements.set(
            hashPlaceholder("autov3", i),
            (h.autoV3Full ?? "").toLowerCase().padEnd(64, "0").slice(0, 64),
          );
          replacements.set(
            hashPlaceholder("legacy", i),
            (h.a1111?.modelHash ?? "").padEnd(8, "0").slice(0, 8),
          );
          replacements.set(hashPlaceholder("autov2", i), h.sha256!.slice(0, 10).toLowerCase());
        });
        return replacements;
      },
    });
  } finally {
    pool.dispose(); // the kernel's memory back, for its next job
  }
  if (hashes.length === 0) hashes = await Promise.all(hashing);
  const kept = new Set(keys.map((planned) => planned.key));
  return {
    output: output.path,
    bytes: written.bytes,
    tensors: tensors.length,
    ...(written.dataSha256 ? { dataSha256: written.dataSha256 } : {}),
    architecture: detection.id,
    merged: keys.filter((k) => k.plan.kind === "merge").length,
    copied: keys.filter((k) => k.plan.kind === "read").length,
    // keys pruned away were not copied from anywhere: only what the output holds counts here
    onlyInLaterInputs: dedupe(plan.copiedFromLaterInputs).filter((entry) => kept.has(entry.key)),
    nonFinite: [...stats].filter(([, s]) => s.nonFinite > 0).map(([key, s]) => ({ key, count: s.nonFinite })),
    inputHashes: Object.fromEntries(
      graph.inputs.map((input, i) => [
        input.name,
        { sha256: hashes[i]!.sha256!.toLowerCase(), autoV3: (hashes[i]!.autoV3Full ?? "").toLowerCase() },
      ]),
    ),
    pruned: plan.keys.length - keys.length,
    timings: { total: (performance.now() - started) / 1000, ...written.timings },
  };
}

function outputDtypeOf(planned: PlannedKey, target: DType | undefined): DType {
  const dtype = planned.primary.dtype;
  return target && isFloatDType(dtype) ? target : dtype;
}

/** Prune, VAE policy and position_ids, on the planned keys (nothing is read). */
function finishKeys(plan: GraphPlan, output: MergeOutput, detection: Detection): PlannedKey[] {
  let keys = plan.keys.filter((planned) => !output.prune || prunedKeep(planned.key, detection));
  keys = keys.map((planned) => {
    if (!planned.key.endsWith("position_ids")) return planned;
    const fresh = freshPositionIds(planned.key);
    return {
      key: planned.key,
      shape: fresh.shape,
      primary: fresh,
      plan: { kind: "read", input: "<arange(77)>", tensor: fresh },
    };
  });
  const vae = output.vae ?? { policy: "keep-a" };
  if (vae.policy === "bake") {
    const baked = vaeTensorsForBaking(vae.checkpoint);
    const model = new Map(keys.map((k) => [k.key, k.primary]));
    checkVaeFits(model, baked, vae.checkpoint.path);
    const modelVae = keys.find((k) => k.key.startsWith(VAE_PREFIX) && isFloatDType(k.primary.dtype))?.primary;
    keys = keys.filter((k) => !k.key.startsWith(VAE_PREFIX));
    for (const [key, tensor] of baked) {
      // the baked VAE takes the precision of the model's own VAE
      const primary = modelVae && isFloatDType(tensor.dtype) ? { ...tensor, dtype: modelVae.dtype } : tensor;
      keys.push({
        key,
        shape: tensor.shape,
        primary,
        plan: { kind: "read", input: vae.checkpoint.path, tensor },
      });
    }
  } else if (vae.policy === "keep-a") {
    // the classic rule would merge the VAE at BASE, which greys images: keep the first model's
    keys = keys.map((planned) =>
      planned.key.startsWith(VAE_PREFIX) && planned.plan.kind === "merge"
        ? { ...planned, plan: { kind: "read", input: "a", tensor: planned.primary } }
        : planned,
    );
  } else if (vae.policy === "take") {
    keys = keys.map((planned) => {
      if (!planned.key.startsWith(VAE_PREFIX)) return planned;
      const tensor = findInput(planned, vae.input);
      return tensor ? { ...planned, plan: { kind: "read", input: vae.input, tensor } } : planned;
    });
  }
  return keys;
}

function findInput(planned: PlannedKey, input: string): StoredTensor | undefined {
  const search = (node: PlannedKey["plan"]): StoredTensor | undefined =>
    node.kind === "read"
      ? node.input === input
        ? node.tensor
        : undefined
      : node.args.map(search).find(Boolean);
  return search(planned.plan);
}

function dedupe<T extends { key: string }>(items: T[]): T[] {
  return [...new Map(items.map((item) => [item.key, item])).values()];
}
