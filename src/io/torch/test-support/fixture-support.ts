import { readdirSync, readFileSync } from "node:fs";
import { FIXTURE_DIRS } from "../../../test-support/fixture-dirs.js";
import type { ByteSource } from "../../byte-source.js";
import { dtypeBytes, tensorByteLength } from "../../dtype.js";
import type { TorchTensorRef } from "../../pickle/index.js";
import type { StoredTensor } from "../../tensor.js";
import type { TorchFile } from "../parse-torch-file.js";

/** Test support: the PyTorch fixtures (written by real torch.save) and their oracles. */
export const FIXTURE_DIR = FIXTURE_DIRS.ckpt;

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((name) => name.endsWith(".expected.json"))
    .map((name) => name.slice(0, -".expected.json".length))
    .sort();
}

/** The fields of `<fixture>.expected.json` the tests use (see the fixtures' README). */
export interface FixtureExpectation {
  must_reject?: boolean;
  reason?: string;
  container?: "pickle" | "zip" | "legacy";
  dangerous_globals?: string[];
  format: "zip" | "legacy";
  top_level_type: string;
  top_level_keys: string[];
  tensors: Record<
    string,
    { dtype: string; shape: number[]; stride: number[]; storage_offset: number; sha256_contiguous: string }
  >;
  scalars: Record<string, unknown>;
  numpy_scalars: Record<string, { dtype: string; value: unknown }>;
  none_leaves: string[];
  containers: Record<string, { type: string; len: number; key_types?: string[] }>;
  attributes: Record<string, unknown>;
  parameter_paths: string[];
  requires_grad_paths: string[];
  tensor_storage: Record<string, string>;
  storages: Record<string, Record<string, unknown>>;
  opcodes: string[];
  globals: string[];
  zip?: { archive_prefix: string };
}

export function fixtureExpectation(name: string): FixtureExpectation {
  return JSON.parse(readFileSync(`${FIXTURE_DIR}${name}.expected.json`, "utf8"));
}

/** Any tensor of a parsed file (also outside the state dict) as a StoredTensor, strides kept. */
export function storedTensorOf(
  file: TorchFile,
  source: ByteSource,
  key: string,
  tensor: TorchTensorRef,
): StoredTensor {
  const storage = file.storages.get(tensor.storage.key)!;
  return {
    key,
    dtype: storage.dtype,
    shape: tensor.shape,
    source,
    byteOffset: storage.dataOffset + tensor.storageOffset * dtypeBytes(storage.dtype),
    strides: tensor.stride,
    byteLength: tensorByteLength(storage.dtype, tensor.shape),
    storageKey: storage.key,
  };
}
