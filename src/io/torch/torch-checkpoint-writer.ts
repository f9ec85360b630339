import { GyozaError } from "../../errors.js";
import { AtomicFileWriter } from "../atomic-file.js";
import type { BlockMemory } from "../direct-appender.js";
import { DTYPES, tensorByteLength } from "../dtype.js";
import { referenceOrder, type TensorSpec } from "../safetensors/write-safetensors.js";
import type { TensorStreamWriter } from "../tensor-stream-writer.js";
import { Crc32Worker } from "./crc32-worker.js";
import { type PickledTensor, stateDictPickle } from "./state-dict-pickle.js";
import { TorchZipWriter } from "./torch-zip-writer.js";

/** torch.save's serialization format version record. */
const TORCH_VERSION_RECORD = "3\n";
const utf8 = new TextEncoder();

/**
 * The order of the storages' bytes in the file; torch reads each storage by name from the central
 * directory, so either loads.
 * - "torch": as torch.save lays them out (storage keys in string order: 0, 1, 10, 100, …).
 * - "reference": the safetensors reference order (dtype, then name), the order a merge computes
 *   them in: inputs are then read front to back as for a safetensors output, where torch's order
 *   would have every input read in a shuffled order.
 * - a map key → position (where the tensor lies in the merge's first input): storages follow it, so
 *   a `.ckpt` input, whose storages torch laid out in its own order, is read front to back too;
 *   tensors it lacks follow in reference order.
 */
export type TorchDataOrder = "torch" | "reference" | ReadonlyMap<string, number>;

export interface TorchCheckpointWriterOptions {
  /** Directory inside the zip; torch 2 writes "archive", torch 1.13 the file stem. */
  archiveName?: string;
  /** "torch" by default. */
  dataOrder?: TorchDataOrder;
  /** Append in aligned blocks in this memory, with O_DIRECT where the file system allows. */
  blockMemory?: BlockMemory;
}

/**
 * Streams `{"state_dict": OrderedDict(key → tensor)}` as a torch zip checkpoint that
 * `torch.load(path, weights_only=True)` reads (torch 1.13 and 2.x): every size is known from the
 * tensors' shapes, so the pickle (each tensor its own storage, keys numbered in state-dict order
 * like torch) is written first, then each storage's bytes in `order`, in chunks of any size, each
 * entry's CRC-32 computed on the way; `finish` adds the version record and the central directory,
 * fsyncs and renames. Same tensors, same bytes.
 */
export class TorchCheckpointWriter implements TensorStreamWriter {
  private index = 0;
  private writtenInTensor = 0;
  private entryOpen = false;
  /** What `reserveAppend` last handed out, for `commitAppend` to count. */
  private reserved: Uint8Array | undefined;

  private constructor(
    private readonly file: AtomicFileWriter,
    private readonly zip: TorchZipWriter,
    private readonly archive: string,
    readonly order: readonly PickledTensor[],
  ) {}

  /** Checks the tensors (before creating anything), writes the pickle and the byte-order record. */
  static async create(
    path: string,
    tensors: readonly TensorSpec[],
    options: TorchCheckpointWriterOptions = {},
  ): Promise<TorchCheckpointWriter> {
    const archive = options.archiveName ?? "archive";
    if (!/^[A-Za-z0-9_.-]+$/.test(archive)) {
      throw new GyozaError("usage", `archive name ${JSON.stringify(archive)} must be a plain file name`);
    }
    const planned = planStorages(tensors);
    const pickle = stateDictPickle(planned);
    const order = dataOrder(planned, options.dataOrder ?? "torch");
    // bytes computed into the write blocks are CRC'd on a worker thread, reading the blocks in place:
    // a block is reused only once the worker has read what it holds (the appender's hash gate)
    const crcWorker = Crc32Worker.create();
    let zip: TorchZipWriter | undefined;
    const gate = { update: async () => zip?.computed() };
    let file: AtomicFileWriter;
    try {
      file = await AtomicFileWriter.create(path, {
        direct: options.blockMemory ?? {},
        ...(crcWorker ? { hash: { hasher: gate, from: 0 } } : {}),
      });
    } catch (error) {
      await crcWorker?.dispose();
      throw error;
    }
    zip = new TorchZipWriter(file, crcWorker);
    try {
      await zip.addEntry(`${archive}/data.pkl`, pickle.byteLength, [pickle]);
      await zip.addEntry(`${archive}/byteorder`, 6, [utf8.encode("little")]);
    } catch (error) {
      await file.abort();
      await zip.close();
      throw error;
    }
    return new TorchCheckpointWriter(file, zip, archive, order);
  }

  get path(): string {
    return this.file.path;
  }

  async write(bytes: Uint8Array): Promise<void> {
    await this.fitting(bytes.byteLength);
    this.zip.update(bytes);
    await this.file.write(bytes);
    this.writtenInTensor += bytes.byteLength;
  }

  async writeMany(chunks: readonly Uint8Array[]): Promise<void> {
    for (const chunk of chunks) await this.write(chunk);
  }

  async reserveAppend(max: number): Promise<Uint8Array | undefined> {
    const tensor = await this.orAbort(() => this.nextTensor());
    if (!tensor) return undefined;
    const space = await this.file.reserveAppend(Math.min(max, tensor.byteLength - this.writtenInTensor));
    this.reserved = space;
    return space;
  }

  commitAppend(bytes: number): void {
    if (!this.reserved || bytes > this.reserved.byteLength)
      throw new RangeError(`cannot commit ${bytes} bytes: ${this.reserved?.byteLength ?? 0} reserved`);
    // CRC'd (on the worker) before the block is reused: the appender waits for it (see create)
    this.zip.updateShared(this.reserved.subarray(0, bytes));
    this.file.commitAppend(bytes);
    this.reserved = undefined;
    this.writtenInTensor += bytes;
  }

  /** Checks that every tensor was written, adds the version record and the directory, fsyncs, renames. */
  async finish(): Promise<{ bytes: number }> {
    const left = await this.orAbort(() => this.nextTensor());
    if (left) {
      await this.abort();
      throw new GyozaError("usage", `tensor ${left.key} was not fully written`);
    }
    await this.orAbort(async () => {
      await this.zip.addEntry(`${this.archive}/version`, TORCH_VERSION_RECORD.length, [
        utf8.encode(TORCH_VERSION_RECORD),
      ]);
      await this.zip.finish();
    });
    const bytes = this.file.bytesWritten;
    await this.file.commit();
    await this.zip.close();
    return { bytes };
  }

  async abort(): Promise<void> {
    await this.file.abort();
    await this.zip.close();
  }

  /** The tensor `bytes` more bytes belong to; a write that would cross its end is a planning bug. */
  private async fitting(bytes: number): Promise<PickledTensor> {
    const tensor = await this.orAbort(() => this.nextTensor());
    if (!tensor || this.writtenInTensor + bytes > tensor.byteLength) {
      await this.abort();
      throw new GyozaError(
        "usage",
        `write of ${bytes} bytes does not fit tensor ${tensor?.key ?? "(none left)"}`,
      );
    }
    return tensor;
  }

  /**
   * The tensor the next bytes belong to, undefined when all are written: ends the entries of tensors
   * complete (their data descriptors) and begins the next one's (its local header) on the way.
   */
  private async nextTensor(): Promise<PickledTensor | undefined> {
    for (;;) {
      const tensor = this.order[this.index];
      if (!tensor) return undefined;
      if (!this.entryOpen) {
        await this.zip.beginEntry(`${this.archive}/data/${tensor.storageKey}`, tensor.byteLength);
        this.entryOpen = true;
      }
      if (this.writtenInTensor < tensor.byteLength) return tensor;
      await this.zip.endEntry();
      this.entryOpen = false;
      this.index++;
      this.writtenInTensor = 0;
    }
  }

  private async orAbort<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      await this.abort();
      throw error;
    }
  }
}

function dataOrder(planned: readonly PickledTensor[], order: TorchDataOrder): PickledTensor[] {
  if (order === "torch") return [...planned].sort((a, b) => (a.storageKey < b.storageKey ? -1 : 1));
  const reference = referenceOrder(planned);
  if (order === "reference") return reference;
  const rank = new Map(reference.map((tensor, index) => [tensor.key, index]));
  const position = (tensor: PickledTensor) => order.get(tensor.key) ?? Number.POSITIVE_INFINITY;
  return reference.sort((a, b) => position(a) - position(b) || rank.get(a.key)! - rank.get(b.key)!);
}

/** Storage keys in state-dict order, as torch numbers them; refuses what torch cannot hold. */
function planStorages(tensors: readonly TensorSpec[]): PickledTensor[] {
  const keys = new Set<string>();
  return tensors.map((tensor, index) => {
    if (keys.has(tensor.key)) throw new GyozaError("usage", "duplicate tensor key", { path: tensor.key });
    keys.add(tensor.key);
    if (!Object.hasOwn(DTYPES, tensor.dtype) || DTYPES[tensor.dtype].torchStorage === null) {
      throw new GyozaError("usage", `dtype ${tensor.dtype} has no torch storage type`, { path: tensor.key });
    }
    return {
      key: tensor.key,
      dtype: tensor.dtype,
      shape: [...tensor.shape],
      storageKey: String(index),
      byteLength: tensorByteLength(tensor.dtype, tensor.shape),
    };
  });
}
