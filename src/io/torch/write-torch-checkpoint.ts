import { GyozaError } from "../../errors.js";
import { noProgress, type ProgressListener } from "../../progress.js";
import { AtomicFileWriter } from "../atomic-file.js";
import { DTYPES, type DType, tensorByteLength } from "../dtype.js";
import { PickleWriter } from "../pickle/index.js";
import { contiguousStrides } from "../read-tensor.js";
import { TorchZipWriter } from "./torch-zip-writer.js";

/** One tensor to write; its bytes (contiguous, little-endian) are read only when written. */
export interface TorchTensorSource {
  readonly key: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  read(): Promise<Uint8Array>;
}

export interface WriteTorchCheckpointOptions {
  /** Directory inside the zip; torch 2 writes "archive", torch 1.13 the file stem. */
  archiveName?: string;
  onProgress?: ProgressListener;
}

export interface WriteTorchCheckpointResult {
  readonly bytesWritten: number;
  readonly tensorCount: number;
}

/** Pickle batches dict items in groups of this many (pickle's _BATCHSIZE). */
const PICKLE_BATCH_SIZE = 1000;
/** torch.save's serialization format version record. */
const TORCH_VERSION_RECORD = "3\n";

interface PlannedTensor extends TorchTensorSource {
  readonly storageKey: string;
  readonly byteLength: number;
}

/**
 * Writes `{"state_dict": OrderedDict(key → tensor)}` as a torch zip checkpoint that
 * `torch.load(path, weights_only=True)` reads (torch 1.13 and 2.x): each tensor its own storage,
 * entries ordered like torch (data.pkl, byteorder, data/<key> in string order, version). Tensor
 * bytes are streamed one at a time into a temp file that is renamed into place only on success.
 */
export async function writeTorchCheckpoint(
  path: string,
  entries: Iterable<TorchTensorSource> | AsyncIterable<TorchTensorSource>,
  options: WriteTorchCheckpointOptions = {},
): Promise<WriteTorchCheckpointResult> {
  const archive = options.archiveName ?? "archive";
  if (!/^[A-Za-z0-9_.-]+$/.test(archive)) {
    throw new GyozaError("usage", `archive name ${JSON.stringify(archive)} must be a plain file name`);
  }
  const onProgress = options.onProgress ?? noProgress;
  const planned = await planTensors(entries);
  const pickle = stateDictPickle(planned);
  const totalBytes = planned.reduce((sum, tensor) => sum + tensor.byteLength, 0);

  const out = await AtomicFileWriter.create(path);
  try {
    const zip = new TorchZipWriter(out);
    onProgress({ type: "start", task: `write ${path}`, totalBytes });
    await zip.addEntry(`${archive}/data.pkl`, pickle.byteLength, [pickle]);
    await zip.addEntry(`${archive}/byteorder`, 6, [new TextEncoder().encode("little")]);
    const byName = [...planned].sort((a, b) => (a.storageKey < b.storageKey ? -1 : 1));
    // The next tensor is read while the current one is written (two tensors in memory at most).
    let pending = byName.length > 0 ? byName[0]!.read() : undefined;
    for (const [index, tensor] of byName.entries()) {
      const bytes = await pending!;
      pending = index + 1 < byName.length ? byName[index + 1]!.read() : undefined;
      // An unobserved rejection would be reported as unhandled if the current write fails first.
      pending?.catch(() => {});
      if (bytes.byteLength !== tensor.byteLength) {
        throw new GyozaError(
          "usage",
          `read() returned ${bytes.byteLength} bytes for a ${tensor.dtype} tensor of shape [${tensor.shape}] (${tensor.byteLength} bytes)`,
          { file: path, path: tensor.key },
        );
      }
      await zip.addEntry(`${archive}/data/${tensor.storageKey}`, bytes.byteLength, [bytes]);
      onProgress({ type: "advance", bytes: bytes.byteLength, item: tensor.key });
    }
    await zip.addEntry(`${archive}/version`, TORCH_VERSION_RECORD.length, [
      new TextEncoder().encode(TORCH_VERSION_RECORD),
    ]);
    await zip.finish();
    const bytesWritten = out.bytesWritten;
    await out.commit();
    onProgress({ type: "finish", task: `write ${path}` });
    return { bytesWritten, tensorCount: planned.length };
  } catch (error) {
    await out.abort();
    throw error;
  }
}

async function planTensors(
  entries: Iterable<TorchTensorSource> | AsyncIterable<TorchTensorSource>,
): Promise<PlannedTensor[]> {
  const planned: PlannedTensor[] = [];
  const keys = new Set<string>();
  for await (const entry of entries) {
    if (keys.has(entry.key)) throw new GyozaError("usage", "duplicate tensor key", { path: entry.key });
    keys.add(entry.key);
    if (!Object.hasOwn(DTYPES, entry.dtype) || DTYPES[entry.dtype].torchStorage === null) {
      throw new GyozaError("usage", `dtype ${entry.dtype} has no torch storage type`, { path: entry.key });
    }
    planned.push({
      key: entry.key,
      dtype: entry.dtype,
      shape: [...entry.shape],
      read: () => entry.read(),
      storageKey: String(planned.length),
      byteLength: tensorByteLength(entry.dtype, entry.shape),
    });
  }
  return planned;
}

/** The pickle torch.save writes for `{"state_dict": OrderedDict(...)}`, memoized like Python's pickler. */
function stateDictPickle(tensors: readonly PlannedTensor[]): Uint8Array {
  const w = new PickleWriter().proto(2);
  w.emptyDict();
  w.put();
  w.string("state_dict");
  w.put();
  w.global("collections", "OrderedDict");
  const orderedDict = w.put();
  w.emptyTuple().reduce();
  w.put();
  const memo = new Map<string, number>();
  const memoized = (id: string, emit: () => void) => {
    const index = memo.get(id);
    if (index !== undefined) w.get(index);
    else {
      emit();
      memo.set(id, w.put());
    }
  };
  const intTuple = (values: readonly number[]) => {
    if (values.length === 0) return void w.emptyTuple();
    if (values.length > 3) w.mark();
    for (const value of values) w.int(value);
    if (values.length === 1) w.tuple1();
    else if (values.length === 2) w.tuple2();
    else if (values.length === 3) w.tuple3();
    else w.tuple();
    w.put();
  };
  for (let start = 0; start < tensors.length; start += PICKLE_BATCH_SIZE) {
    const batch = tensors.slice(start, start + PICKLE_BATCH_SIZE);
    if (batch.length > 1) w.mark();
    for (const tensor of batch) {
      w.string(tensor.key);
      w.put();
      memoized("rebuild", () => w.global("torch._utils", "_rebuild_tensor_v2"));
      w.mark();
      w.mark();
      memoized("s:storage", () => w.string("storage"));
      const storageType = DTYPES[tensor.dtype].torchStorage!;
      memoized(`g:${storageType}`, () => w.global("torch", storageType));
      w.string(tensor.storageKey);
      w.put();
      memoized("s:cpu", () => w.string("cpu"));
      w.int(tensor.byteLength / DTYPES[tensor.dtype].bytes);
      w.tuple();
      w.put();
      w.binPersId();
      w.int(0);
      intTuple(tensor.shape);
      intTuple(contiguousStrides(tensor.shape));
      w.bool(false);
      w.get(orderedDict).emptyTuple().reduce();
      w.put();
      w.tuple();
      w.put();
      w.reduce();
      w.put();
    }
    w.raw(batch.length > 1 ? 0x75 : 0x73); // SETITEMS / SETITEM
  }
  w.setItem();
  return w.stop().bytes();
}
