import { type ByteRange, type Prefetch, prefetchFile, type ReadAhead } from "../io/prefetch-file.js";
import { stridedExtent } from "../io/read-tensor.js";
import type { StoredTensor } from "../io/tensor.js";
import { type MergePlan, opsOf, type ReadOp } from "../plan/merge-plan.js";
import type { PlanSources } from "./bind-plan.js";

/**
 * The byte ranges a plan reads from each of its files, in the order the output takes them: the keys
 * in `order` (the writer's), each key's reads (LoRA factors included) in the order of its op.
 */
export function plannedReads(
  plan: MergePlan,
  sources: PlanSources,
  order: readonly string[],
): Map<string, ByteRange[]> {
  const planned = new Map(plan.keys.map((key) => [key.key, key]));
  const reads = new Map<string, ByteRange[]>();
  const add = (read: ReadOp) => {
    const path = plan.sources[read.source];
    const tensor = sources.get(read.source)?.get(read.key);
    if (path !== undefined && tensor) addRead(reads, path, tensor);
  };
  for (const key of order) {
    const op = planned.get(key)?.op;
    if (!op) continue;
    for (const node of opsOf(op)) {
      if (node.op === "read") add(node);
      if (node.op !== "add-lora") continue;
      for (const term of node.terms) {
        add(term.up);
        add(term.down);
      }
    }
  }
  return reads;
}

/**
 * The byte ranges a conversion reads from its files, in the output's `order`: each output key's
 * source tensor, where it is one of a file's stored tensors (`files`: path → its tensors).
 */
export function convertedReads(
  sourceOf: ReadonlyMap<string, StoredTensor>,
  files: ReadonlyMap<string, ReadonlyMap<string, StoredTensor>>,
  order: readonly string[],
): Map<string, ByteRange[]> {
  const pathOf = new Map<StoredTensor, string>();
  for (const [path, tensors] of files) for (const tensor of tensors.values()) pathOf.set(tensor, path);
  const reads = new Map<string, ByteRange[]>();
  for (const key of order) {
    const tensor = sourceOf.get(key);
    const path = tensor && pathOf.get(tensor);
    if (tensor && path !== undefined) addRead(reads, path, tensor);
  }
  return reads;
}

/** Appends the bytes `tensor` covers in its file to that file's ranges. */
function addRead(reads: Map<string, ByteRange[]>, path: string, tensor: StoredTensor): void {
  const { minByte, maxByteExclusive } = tensor.strides
    ? stridedExtent(tensor)
    : { minByte: 0, maxByteExclusive: tensor.byteLength };
  const ranges = reads.get(path) ?? [];
  reads.set(path, ranges);
  ranges.push({ offset: tensor.byteOffset + minByte, length: maxByteExclusive - minByte });
}

/** True when each range starts at or after the one before: the reader goes front to back. */
export function isFrontToBack(ranges: readonly ByteRange[]): boolean {
  return ranges.every((range, i) => i === 0 || range.offset >= ranges[i - 1]!.offset);
}

/**
 * Prefetches the files read out of their order (`plannedReads`, `convertedReads`), each along the
 * order its bytes are wanted. A torch `.ckpt` stores its tensors in the model's module order while a
 * safetensors output is written in the reference order (dtype, then name): CLIP first, from the end
 * of the file, then the VAE, then the UNet's blocks in string order. Read straight, a cold disk
 * serves those jumps at a fraction of its sequential speed; the kernel brings them into the page
 * cache here instead, a little ahead of the merge (see `prefetchFile`), so its own reads find them
 * there. Files read front to back need none (the kernel's own read-ahead serves them, or they are read
 * past the cache: src/stream/input-reads.ts). Without a kernel read-ahead nothing is prefetched:
 * reading the bytes into the process as well cost more than it saved (see `prefetchFile`).
 */
export function prefetchOutOfOrderReads(
  reads: ReadonlyMap<string, readonly ByteRange[]>,
  readAhead: ReadAhead | undefined,
): Prefetch[] {
  if (!readAhead) return [];
  return [...reads]
    .filter(([, ranges]) => !isFrontToBack(ranges))
    .map(([path, ranges]) => prefetchFile(path, { readAhead, ranges }));
}
