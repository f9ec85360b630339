import { elementCount } from "../io/dtype.js";
import { decodeToFloat32 } from "../io/float-convert.js";
import { readTensorBytes } from "../io/read-tensor.js";
import type { StoredTensor } from "../io/tensor.js";
import { type LowRankFactors, lowRankStride, type MergeKernel } from "../kernels/merge-kernel.js";
import type { BoundLoraTerm, BoundOp } from "./bind-plan.js";
import type { BufferPool } from "./buffer-pool.js";
import { float32View } from "./convert-bytes.js";

/** The up and down matrices of every LoRA term of one key, in f32, until `release`. */
export interface LoadedFactors {
  readonly byTerm: ReadonlyMap<BoundLoraTerm, LowRankFactors>;
  release(): void;
}

/** Every LoRA term below `op` (those of all its add-lora nodes). */
export function loraTermsOf(op: BoundOp): BoundLoraTerm[] {
  if (op.op === "read") return [];
  const below = (op.args as readonly BoundOp[]).flatMap(loraTermsOf);
  return op.op === "add-lora" ? [...below, ...op.terms] : below;
}

/** Bytes the factors of `terms` take in f32 (what a key holds while it is computed). */
export function factorBytes(terms: readonly BoundLoraTerm[]): number {
  return terms.reduce(
    (sum, term) => sum + 4 * (elementCount(term.up.shape) + elementCount(term.down.shape)),
    0,
  );
}

/**
 * Reads and decodes the factors of `terms` whole (a module's up and down are small next to the weight
 * they change: 1.3 MB of f32 for SD 1.5's largest rank-32 module), into the pool's buffers when there is
 * one, which live in the kernel's memory, so the wasm kernel computes on them in place.
 */
export async function loadLoraFactors(
  terms: readonly BoundLoraTerm[],
  kernel: MergeKernel,
  pool?: BufferPool,
): Promise<LoadedFactors> {
  const held: Uint8Array[] = [];
  /** The tensor as `rows` rows of `cols` values, `stride` apart (down's rows padded, see lowRankStride). */
  const decode = async (
    tensor: StoredTensor,
    rows: number,
    cols: number,
    stride: number,
  ): Promise<Float32Array> => {
    const bytes = await readTensorBytes(tensor);
    const size = bytes.byteLength / (rows * cols);
    const buffer = pool?.acquire(rows * stride * 4);
    if (buffer) held.push(buffer);
    const out = buffer ? float32View(buffer) : new Float32Array(rows * stride);
    for (let row = 0; row < (stride === cols ? 1 : rows); row++) {
      const count = stride === cols ? rows * cols : cols;
      const from = bytes.subarray(row * cols * size, (row * cols + count) * size);
      const into = out.subarray(row * stride, row * stride + count);
      if (tensor.dtype === "F16" || tensor.dtype === "BF16" || tensor.dtype === "F32")
        kernel.toFloat32(from, tensor.dtype, into);
      else into.set(decodeToFloat32(from, tensor.dtype));
    }
    return out;
  };
  const entries = await Promise.all(
    terms.map(async (term) => {
      const stride = lowRankStride(term.cols);
      const [up, down] = await Promise.all([
        decode(term.up, term.count, term.rank, term.rank),
        decode(term.down, term.rank, term.cols, stride),
      ]);
      return [term, { up, down, rank: term.rank, cols: term.cols, stride }] as const;
    }),
  );
  let released = false;
  return {
    byTerm: new Map(entries),
    release() {
      if (released) return;
      released = true;
      for (const buffer of held) pool?.release(buffer);
    },
  };
}
