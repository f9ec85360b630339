import { GyozaError } from "../../errors.js";
import { AtomicFileWriter } from "../atomic-file.js";
import { ChunkSha256 } from "../chunk-sha256.js";
import type { BlockMemory } from "../direct-appender.js";
import { type DType, tensorByteLength } from "../dtype.js";
import type { TensorStreamWriter } from "../tensor-stream-writer.js";

export interface TensorSpec {
  readonly key: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface PlannedTensor extends TensorSpec {
  readonly byteLength: number;
  /** Offset of the tensor's bytes inside the data section. */
  readonly begin: number;
}

/** Metadata key whose value gyoza fills with "0x" + sha256 of the data section once it is written. */
export const SELF_HASH_KEY = "modelspec.hash_sha256";
const SELF_HASH_PLACEHOLDER = `0x${"0".repeat(64)}`;

/**
 * Rank of each dtype in the reference implementation's `Dtype` enum, "in increasing alignment order"
 * (huggingface/safetensors, safetensors/src/tensor.rs). Its writer sorts by this rank, descending,
 * then by name — so within one size I64 precedes F64, F32 precedes I32 and BF16 precedes F16.
 */
const REFERENCE_DTYPE_RANK: Record<DType, number> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  F8_E5M2: 3,
  F8_E4M3: 4,
  I16: 5,
  F16: 7,
  BF16: 8,
  I32: 9,
  F32: 11,
  F64: 12,
  I64: 13,
};

/** The reference writer's tensor order: descending dtype rank, then name (byte order). */
export function referenceOrder<T extends TensorSpec>(tensors: readonly T[]): T[] {
  return [...tensors].sort(
    (x, y) =>
      REFERENCE_DTYPE_RANK[y.dtype] - REFERENCE_DTYPE_RANK[x.dtype] ||
      (x.key < y.key ? -1 : x.key > y.key ? 1 : 0),
  );
}

/** Serialises the header as the reference does: compact JSON, metadata first, padded with spaces to 8 bytes. */
export function encodeSafetensorsHeader(
  planned: readonly PlannedTensor[],
  metadata: Readonly<Record<string, string>> | undefined,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  for (const tensor of planned) {
    if (tensor.key === "__metadata__") throw new GyozaError("usage", "a tensor cannot be named __metadata__");
    header[tensor.key] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [tensor.begin, tensor.begin + tensor.byteLength],
    };
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return bytes;
}

/**
 * Streams a safetensors file: the header is written first, then each tensor's bytes in the planned
 * order, in chunks of any size. The sha256 of the data section (= the file's AutoV3) is computed on
 * the way and, when asked, patched into `modelspec.hash_sha256` without a second pass.
 */
export class SafetensorsWriter implements TensorStreamWriter {
  readonly order: readonly PlannedTensor[];
  private readonly dataHash: ChunkSha256;
  private tensorIndex = 0;
  private writtenInTensor = 0;
  private readonly dataOffset: number;
  private readonly header: Buffer;
  private readonly selfHashPosition: number | null;

  private constructor(
    private readonly file: AtomicFileWriter,
    order: PlannedTensor[],
    header: Uint8Array,
    selfHashPosition: number | null,
    dataHash: ChunkSha256,
  ) {
    this.dataHash = dataHash;
    this.order = order;
    this.dataOffset = header.byteLength;
    this.header = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
    this.selfHashPosition = selfHashPosition;
  }

  static async create(
    path: string,
    tensors: readonly TensorSpec[],
    options: {
      metadata?: Record<string, string>;
      selfHash?: boolean;
      keepOrder?: boolean;
      /** Memory for the O_DIRECT write blocks (a merge kernel's, so its chunks copy in fast). */
      blockMemory?: BlockMemory;
    } = {},
  ): Promise<SafetensorsWriter> {
    const seen = new Set<string>();
    for (const tensor of tensors) {
      if (seen.has(tensor.key)) throw new GyozaError("usage", `duplicate tensor key ${tensor.key}`);
      seen.add(tensor.key);
    }
    let begin = 0;
    const order = (options.keepOrder ? [...tensors] : referenceOrder(tensors)).map((tensor) => {
      const byteLength = tensorByteLength(tensor.dtype, tensor.shape);
      const planned = { key: tensor.key, dtype: tensor.dtype, shape: [...tensor.shape], byteLength, begin };
      begin += byteLength;
      return planned;
    });
    const metadata = { ...(options.metadata ?? {}) };
    if (options.selfHash) metadata[SELF_HASH_KEY] = SELF_HASH_PLACEHOLDER;
    const header = encodeSafetensorsHeader(order, metadata);
    let selfHashPosition: number | null = null;
    if (options.selfHash) {
      const needle = Buffer.from(`"${SELF_HASH_KEY}":"${SELF_HASH_PLACEHOLDER}"`);
      const at = Buffer.from(header.buffer, header.byteOffset, header.byteLength).indexOf(needle);
      selfHashPosition = at + needle.byteLength - 1 - SELF_HASH_PLACEHOLDER.length;
    }
    // the file hashes the data section's blocks as it writes them (the data sha256 = AutoV3)
    const dataHash = new ChunkSha256();
    let file: AtomicFileWriter;
    try {
      file = await AtomicFileWriter.create(path, {
        direct: options.blockMemory ?? {},
        hash: { hasher: dataHash, from: header.byteLength },
      });
    } catch (error) {
      await dataHash.dispose();
      throw error;
    }
    const writer = new SafetensorsWriter(file, order, header, selfHashPosition, dataHash);
    try {
      await file.write(header);
    } catch (error) {
      await writer.abort();
      throw error;
    }
    return writer;
  }

  /** The tensor the next bytes belong to, or undefined when all data is written. */
  get current(): PlannedTensor | undefined {
    this.skipEmptyTensors();
    return this.order[this.tensorIndex];
  }

  get path(): string {
    return this.file.path;
  }

  /** Appends data bytes; a chunk may not cross a tensor boundary (a guard against planning bugs). */
  async write(bytes: Uint8Array): Promise<void> {
    const tensor = this.current;
    if (!tensor || this.writtenInTensor + bytes.byteLength > tensor.byteLength) {
      await this.abort();
      throw new GyozaError(
        "usage",
        `write of ${bytes.byteLength} bytes does not fit tensor ${tensor?.key ?? "(none left)"}`,
      );
    }
    await this.orAbort(() => this.file.write(bytes));
    this.account(tensor, bytes.byteLength);
  }

  /** Appends consecutive chunks (each within one tensor) with one system call. */
  async writeMany(chunks: readonly Uint8Array[]): Promise<void> {
    for (const chunk of chunks) {
      const tensor = this.current;
      if (!tensor || this.writtenInTensor + chunk.byteLength > tensor.byteLength) {
        await this.abort();
        throw new GyozaError(
          "usage",
          `write of ${chunk.byteLength} bytes does not fit tensor ${tensor?.key ?? "(none left)"}`,
        );
      }
      this.account(tensor, chunk.byteLength);
    }
    await this.orAbort(() => this.file.writev(chunks));
  }

  /**
   * Up to `max` bytes of the output's next write block (never past the current tensor's end), for the
   * producer to compute the bytes straight into, then `commitAppend`; undefined when the file is not
   * written in blocks (hand a buffer to `write` instead).
   */
  async reserveAppend(max: number): Promise<Uint8Array | undefined> {
    const tensor = this.current;
    if (!tensor) return undefined;
    let space: Uint8Array | undefined;
    await this.orAbort(async () => {
      space = await this.file.reserveAppend(Math.min(max, tensor.byteLength - this.writtenInTensor));
    });
    return space;
  }

  /** Appends the first `bytes` of what `reserveAppend` returned, written in place. */
  commitAppend(bytes: number): void {
    this.file.commitAppend(bytes);
    this.account(this.current!, bytes);
  }

  private account(tensor: PlannedTensor, bytes: number): void {
    this.writtenInTensor += bytes;
    if (this.writtenInTensor === tensor.byteLength) {
      this.tensorIndex++;
      this.writtenInTensor = 0;
    }
  }

  /**
   * Checks that every tensor was written, patches the self hash and any `replacements` (placeholder →
   * value of the same length, for metadata only known at the end such as input hashes), fsyncs and
   * renames. Returns the data sha256 (AutoV3).
   */
  async finish(
    replacements: ReadonlyMap<string, string> = new Map(),
  ): Promise<{ dataSha256: string; bytes: number }> {
    if (this.current) {
      await this.abort();
      throw new GyozaError("usage", `tensor ${this.current.key} was not fully written`);
    }
    let dataSha256: string;
    await this.orAbort(() => this.file.endAppends()); // every block written and hashed
    try {
      dataSha256 = await this.dataHash.digest();
    } catch (error) {
      await this.abort();
      throw error;
    }
    if (this.selfHashPosition !== null)
      await this.file.writeAt(Buffer.from(`0x${dataSha256}`), this.selfHashPosition);
    for (const [placeholder, value] of replacements) {
      const needle = Buffer.from(placeholder);
      const replacement = Buffer.from(value);
      if (replacement.byteLength !== needle.byteLength) {
        await this.abort();
        throw new GyozaError("usage", `replacement for ${placeholder} must be ${needle.byteLength} bytes`);
      }
      for (let at = this.header.indexOf(needle); at >= 0; at = this.header.indexOf(needle, at + 1)) {
        await this.file.writeAt(replacement, at);
      }
    }
    const bytes = this.file.bytesWritten;
    await this.file.commit();
    return { dataSha256, bytes };
  }

  /** Runs a file operation; on failure also stops the hashing thread (the file removes itself). */
  private async orAbort(operation: () => Promise<void>): Promise<void> {
    try {
      await operation();
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  async abort(): Promise<void> {
    await this.dataHash.dispose();
    await this.file.abort();
  }

  get headerBytes(): number {
    return this.dataOffset;
  }

  private skipEmptyTensors(): void {
    while (this.order[this.tensorIndex]?.byteLength === 0 && this.writtenInTensor === 0) this.tensorIndex++;
  }
}
