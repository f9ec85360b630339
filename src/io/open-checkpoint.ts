import { GyozaError } from "../errors.js";
import { type ByteSource, FileByteSource } from "./byte-source.js";
import { openSafetensors } from "./safetensors/read-safetensors.js";
import type { Checkpoint, CheckpointFormat } from "./tensor.js";
import { openTorchCheckpoint } from "./torch/index.js";

/** Recognises a checkpoint by its first bytes, never by its file name. */
export function sniffFormat(head: Uint8Array): CheckpointFormat | undefined {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04)
    return "ckpt-zip";
  if (head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return "ckpt-legacy";
  if (head.length >= 9 && head[8] === 0x7b) return "safetensors";
  return undefined;
}

/** Opens a checkpoint from any byte source: headers and pickles are parsed, no tensor data is read. */
export async function openCheckpointSource(source: ByteSource, path = source.name): Promise<Checkpoint> {
  const head = await source.read(0, Math.min(16, source.size));
  const format = sniffFormat(head);
  if (format === "safetensors") return openSafetensors(source, path);
  if (format === "ckpt-zip" || format === "ckpt-legacy") return openTorchCheckpoint(source, path);
  const hex = Buffer.from(head.subarray(0, 8)).toString("hex");
  throw new GyozaError(
    "format",
    `not a safetensors or PyTorch checkpoint (first bytes ${hex || "missing: empty file"})`,
    {
      file: path,
    },
  );
}

/** Opens a checkpoint file; close it when done. */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const source = await FileByteSource.open(path);
  try {
    return { ...(await openCheckpointSource(source, path)), file: source };
  } catch (error) {
    await source.close();
    throw error;
  }
}
