import { SafetensorsWriter } from "../io/safetensors/write-safetensors.js";
import { writeTorchCheckpoint } from "../io/torch/index.js";
import { type SyntheticOptions, syntheticTensorBytes, syntheticTensors } from "./synthetic-model.js";

export type SyntheticFormat = "safetensors" | "ckpt";

/** Writes a synthetic checkpoint (see synthetic-model.ts) and returns its size in bytes. */
export async function writeSyntheticCheckpoint(
  path: string,
  options: SyntheticOptions,
  format: SyntheticFormat = "safetensors",
  metadata: Record<string, string> = {},
): Promise<number> {
  const tensors = syntheticTensors(options);
  const bytesOf = syntheticTensorBytes(options);
  if (format === "ckpt") {
    const result = await writeTorchCheckpoint(
      path,
      tensors.map((tensor) => ({
        key: tensor.key,
        dtype: tensor.dtype,
        shape: tensor.shape,
        read: async () => Buffer.concat([...bytesOf(tensor)]),
      })),
    );
    return result.bytesWritten;
  }
  const writer = await SafetensorsWriter.create(path, tensors, { metadata });
  try {
    const byKey = new Map(tensors.map((t) => [t.key, t]));
    for (const planned of writer.order) {
      for (const chunk of bytesOf(byKey.get(planned.key)!)) await writer.write(chunk);
    }
    return (await writer.finish()).bytes;
  } catch (error) {
    await writer.abort();
    throw error;
  }
}
