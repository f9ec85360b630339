/**
 * A checkpoint file being written, tensor by tensor in `order`, as the streaming engine drives it:
 * finished buffers go to `write`, bytes computed in place go through `reserveAppend`/`commitAppend`.
 * The safetensors writer and the torch checkpoint writer both are one, so one writing loop (and one
 * aligned O_DIRECT block path) serves both formats.
 */
export interface TensorStreamWriter {
  /** The tensors in the order their bytes are written. */
  readonly order: readonly { readonly key: string; readonly byteLength: number }[];
  /** Appends bytes of the current tensor (a chunk may not cross a tensor boundary). */
  write(bytes: Uint8Array): Promise<void>;
  /** Appends consecutive chunks, each within one tensor. */
  writeMany(chunks: readonly Uint8Array[]): Promise<void>;
  /**
   * Up to `max` bytes of the output's next write block (never past the current tensor's end) to
   * compute bytes straight into, then `commitAppend`; undefined when the file is not written in blocks.
   */
  reserveAppend(max: number): Promise<Uint8Array | undefined>;
  /** Appends the first `bytes` of what `reserveAppend` returned, written in place. */
  commitAppend(bytes: number): void;
  /** Removes the temp file. */
  abort(): Promise<void>;
}
