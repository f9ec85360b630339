import { GyozaError } from "../../errors.js";
import { noProgress, type ProgressListener } from "../../progress.js";
import type { DType } from "../dtype.js";
import { TorchCheckpointWriter, type TorchDataOrder } from "./torch-checkpoint-writer.js";

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
  /** Where the storages' bytes go: as torch.save lays them out ("torch", the default) or in reference order. */
  dataOrder?: TorchDataOrder;
  onProgress?: ProgressListener;
}

export interface WriteTorchCheckpointResult {
  readonly bytesWritten: number;
  readonly tensorCount: number;
}

/**
 * Writes `{"state_dict": OrderedDict(key → tensor)}` as a torch zip checkpoint that
 * `torch.load(path, weights_only=True)` reads (torch 1.13 and 2.x), entries ordered like torch
 * (data.pkl, byteorder, data/<key> in string order, version), each tensor read whole when its turn
 * comes (the next one read while the current one is written): for tensors at hand. Streams of
 * chunks go through TorchCheckpointWriter itself. Written to a temp file renamed into place on success.
 */
export async function writeTorchCheckpoint(
  path: string,
  entries: Iterable<TorchTensorSource> | AsyncIterable<TorchTensorSource>,
  options: WriteTorchCheckpointOptions = {},
): Promise<WriteTorchCheckpointResult> {
  const onProgress = options.onProgress ?? noProgress;
  const sources: TorchTensorSource[] = [];
  for await (const entry of entries) sources.push(entry);
  const writer = await TorchCheckpointWriter.create(path, sources, {
    ...(options.archiveName ? { archiveName: options.archiveName } : {}),
    dataOrder: options.dataOrder ?? "torch",
  });
  const byKey = new Map(sources.map((source) => [source.key, source]));
  const order = writer.order;
  const totalBytes = order.reduce((sum, tensor) => sum + tensor.byteLength, 0);
  try {
    onProgress({ type: "start", task: `write ${path}`, totalBytes });
    let pending = order.length > 0 ? byKey.get(order[0]!.key)!.read() : undefined;
    for (const [index, tensor] of order.entries()) {
      const bytes = await pending!;
      pending = index + 1 < order.length ? byKey.get(order[index + 1]!.key)!.read() : undefined;
      // An unobserved rejection would be reported as unhandled if the current write fails first.
      pending?.catch(() => {});
      if (bytes.byteLength !== tensor.byteLength) {
        throw new GyozaError(
          "usage",
          `read() returned ${bytes.byteLength} bytes for a ${tensor.dtype} tensor of shape [${tensor.shape}] (${tensor.byteLength} bytes)`,
          { file: path, path: tensor.key },
        );
      }
      await writer.write(bytes);
      onProgress({ type: "advance", bytes: bytes.byteLength, item: tensor.key });
    }
    const { bytes } = await writer.finish();
    onProgress({ type: "finish", task: `write ${path}` });
    return { bytesWritten: bytes, tensorCount: order.length };
  } catch (error) {
    await writer.abort();
    throw error;
  }
}
