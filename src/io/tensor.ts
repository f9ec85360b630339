import type { ByteSource } from "./byte-source.js";
import type { DType } from "./dtype.js";

/**
 * A tensor as stored in a file: nothing is read until asked. Every format reader yields these, so
 * the layers above never care whether a key came from safetensors or a pickle.
 */
export interface StoredTensor {
  /** State-dict key as a loader sees it (no `state_dict.` wrapper). */
  readonly key: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Where the bytes live. */
  readonly source: ByteSource;
  /** Byte offset in `source` of element [0, 0, …] (storage start + storage_offset × element size). */
  readonly byteOffset: number;
  /**
   * Strides in elements, or null when the tensor is contiguous row-major: then its bytes are
   * exactly [byteOffset, byteOffset + byteLength) and can be streamed in ranges.
   */
  readonly strides: readonly number[] | null;
  /** Contiguous size in bytes (elements × element size). */
  readonly byteLength: number;
  /** Pickle storage key, when the tensor came from a torch checkpoint (shared storages share it). */
  readonly storageKey?: string;
}

/** A scalar leaf of a pickle, as JS sees it. */
export type PickleScalar = string | number | boolean | null;

export type CheckpointFormat = "safetensors" | "ckpt-zip" | "ckpt-legacy";

/** An opened checkpoint: its tensors, described from headers only. */
export interface Checkpoint {
  readonly path: string;
  readonly format: CheckpointFormat;
  readonly size: number;
  /** In file order (safetensors) or pickle order (torch). */
  readonly tensors: ReadonlyMap<string, StoredTensor>;
  /** safetensors `__metadata__`; empty for torch checkpoints. */
  readonly metadata: Readonly<Record<string, string>>;
  /** For pickles: every `module.name` global the pickle references (all on the allowlist). */
  readonly pickleGlobals: readonly string[];
  /**
   * For torch checkpoints: keys of tensors found outside the state dict (optimizer states, …) and
   * scalar leaves like `epoch`, `global_step`, reported but not part of `tensors`.
   */
  readonly extras: readonly string[];
  /**
   * For torch checkpoints: the values of the scalar leaves among `extras` (an A1111 embedding's
   * `name`, `step`, `sd_checkpoint_name`), by the same dotted path. Strings, numbers (integers
   * beyond 2^53 as decimal strings), booleans and None; bytes are left out.
   */
  readonly scalars?: ReadonlyMap<string, PickleScalar>;
  /** The file it was opened from (`openCheckpoint`), for choices of how to read it. */
  readonly file?: CheckpointFile;
  close(): Promise<void>;
}

/** A checkpoint's file as a streaming reader sees it (src/io/byte-source.ts, FileByteSource). */
export interface CheckpointFile {
  /** The ordinary descriptor (for kernel calls such as mincore or readahead). */
  readonly fd: number;
  readonly size: number;
  /** Streamed reads from now on go past the page cache (O_DIRECT); false where refused. */
  readDirectly(): Promise<boolean>;
}
