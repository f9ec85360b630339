import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GyozaError } from "../../errors.js";
import { BufferByteSource, FileByteSource } from "../byte-source.js";
import type { DType } from "../dtype.js";
import type { PickleDict, TorchTensorRef } from "../pickle/index.js";
import { readTensorBytes } from "../read-tensor.js";
import { openTorchCheckpoint } from "./open-torch-checkpoint.js";
import { parseTorchFile } from "./parse-torch-file.js";
import { readZipDirectory } from "./read-zip-directory.js";
import { crc32 } from "./torch-zip-writer.js";
import { type TorchTensorSource, writeTorchCheckpoint } from "./write-torch-checkpoint.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-torch-write-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function tensor(
  key: string,
  dtype: DType,
  shape: number[],
  itemSize: number,
  seed: number,
): TorchTensorSource & { bytes: Uint8Array } {
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = Uint8Array.from({ length: count * itemSize }, (_, i) => (i * 31 + seed) & 0xff);
  return { key, dtype, shape, bytes, read: async () => bytes };
}

const sample = () => [
  tensor("model.diffusion_model.input_blocks.0.0.weight", "F16", [8, 4, 3, 3], 2, 1),
  tensor("cond_stage_model.transformer.text_model.embeddings.position_ids", "I64", [1, 77], 8, 2),
  tensor("first_stage_model.decoder.conv_out.bias", "F32", [3], 4, 3),
  tensor("edge.zero_dim", "BF16", [], 2, 4),
  tensor("edge.empty", "F32", [0, 5], 4, 5),
  tensor("edge.bool", "BOOL", [3, 5], 1, 6),
  tensor("edge.big_dims", "U8", [70000, 1], 1, 7),
  tensor("edge.rank5", "F64", [1, 2, 1, 2, 1], 8, 8),
];

describe("writeTorchCheckpoint", () => {
  it("round-trips keys, dtypes, shapes and bytes through parseTorchFile", async () => {
    const path = join(dir, "out.ckpt");
    const tensors = sample();
    const result = await writeTorchCheckpoint(path, tensors);
    expect(result.tensorCount).toBe(tensors.length);
    const checkpoint = await openTorchCheckpoint(await FileByteSource.open(path), path);
    try {
      expect(checkpoint.format).toBe("ckpt-zip");
      expect(checkpoint.size).toBe(result.bytesWritten);
      expect([...checkpoint.tensors.keys()]).toEqual(tensors.map((t) => t.key));
      expect(checkpoint.pickleGlobals).toEqual([
        "collections.OrderedDict",
        "torch.BFloat16Storage",
        "torch.BoolStorage",
        "torch.ByteStorage",
        "torch.DoubleStorage",
        "torch.FloatStorage",
        "torch.HalfStorage",
        "torch.LongStorage",
        "torch._utils._rebuild_tensor_v2",
      ]);
      expect(checkpoint.extras).toEqual([]);
      for (const want of tensors) {
        const stored = checkpoint.tensors.get(want.key)!;
        expect(stored.dtype).toBe(want.dtype);
        expect(stored.shape).toEqual(want.shape);
        expect(stored.strides).toBeNull();
        expect(new Uint8Array(await readTensorBytes(stored))).toEqual(want.bytes);
        if (stored.byteLength > 0) expect(stored.byteOffset % 64).toBe(0);
      }
    } finally {
      await checkpoint.close();
    }
  });

  it("wraps the tensors in {state_dict: OrderedDict} with one storage each", async () => {
    const path = join(dir, "out.ckpt");
    await writeTorchCheckpoint(path, sample(), { archiveName: "out" });
    const source = await FileByteSource.open(path);
    try {
      const file = await parseTorchFile(source);
      expect(file.archivePrefix).toBe("out");
      const root = file.root as PickleDict;
      expect([...root.entries.keys()]).toEqual(["state_dict"]);
      const stateDict = root.entries.get("state_dict") as PickleDict;
      expect(stateDict.type).toBe("OrderedDict");
      const storageKeys = [...stateDict.entries.values()].map((t) => (t as TorchTensorRef).storage.key);
      expect(storageKeys).toEqual(["0", "1", "2", "3", "4", "5", "6", "7"]);
    } finally {
      await source.close();
    }
  });

  it("orders zip entries like torch and records CRC-32s that match the data", async () => {
    const path = join(dir, "out.ckpt");
    const many = Array.from({ length: 12 }, (_, i) => tensor(`t${i}`, "F32", [2], 4, i));
    await writeTorchCheckpoint(path, many);
    const bytes = new Uint8Array(await readFile(path));
    const source = new BufferByteSource(bytes);
    const entries = await readZipDirectory(source);
    expect(entries.map((e) => e.name)).toEqual([
      "archive/data.pkl",
      "archive/byteorder",
      ...["0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"].map((k) => `archive/data/${k}`),
      "archive/version",
    ]);
    const file = await parseTorchFile(source);
    for (const entry of entries.filter((e) => e.name.includes("/data/"))) {
      const storage = file.storages.get(entry.name.split("/").at(-1)!)!;
      const data = bytes.subarray(storage.dataOffset, storage.dataOffset + entry.size);
      expect(entry.crc32).toBe(crc32(data));
    }
  });

  it("writes more than 1000 tensors in several SETITEMS batches and a memo past 255", async () => {
    const path = join(dir, "many.pt");
    const many = Array.from({ length: 1100 }, (_, i) => tensor(`lora.${i}.alpha`, "F32", [], 4, i));
    await writeTorchCheckpoint(path, many);
    const source = await FileByteSource.open(path);
    try {
      const file = await parseTorchFile(source);
      expect(file.opcodes).toContain("LONG_BINPUT");
      const stateDict = (file.root as PickleDict).entries.get("state_dict") as PickleDict;
      expect(stateDict.entries.size).toBe(1100);
    } finally {
      await source.close();
    }
  });

  it("takes tensors from an async iterable and reads each one only when writing it", async () => {
    const path = join(dir, "lazy.ckpt");
    const reads: string[] = [];
    async function* lazy(): AsyncGenerator<TorchTensorSource> {
      for (const t of sample()) {
        yield {
          ...t,
          read: async () => {
            reads.push(t.key);
            return t.bytes;
          },
        };
      }
    }
    await writeTorchCheckpoint(path, lazy());
    expect(reads.sort()).toEqual(
      sample()
        .map((t) => t.key)
        .sort(),
    );
  });

  it("leaves nothing behind when a tensor's read fails or returns the wrong size", async () => {
    const path = join(dir, "broken.ckpt");
    const bad = [
      ...sample(),
      { key: "short", dtype: "F32" as const, shape: [4], read: async () => new Uint8Array(3) },
    ];
    await expect(writeTorchCheckpoint(path, bad)).rejects.toThrow(/returned 3 bytes/);
    const failing = [
      { key: "x", dtype: "F32" as const, shape: [1], read: () => Promise.reject(new Error("disk gone")) },
    ];
    await expect(writeTorchCheckpoint(path, failing)).rejects.toThrow(/disk gone/);
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses duplicate keys and dtypes torch has no storage for before creating a file", async () => {
    const path = join(dir, "refused.ckpt");
    const a = tensor("a", "F32", [1], 4, 0);
    await expect(writeTorchCheckpoint(path, [a, a])).rejects.toBeInstanceOf(GyozaError);
    const f8 = { key: "f8", dtype: "F8_E4M3" as const, shape: [1], read: async () => new Uint8Array(1) };
    await expect(writeTorchCheckpoint(path, [f8])).rejects.toThrow(/no torch storage/);
    expect(await readdir(dir)).toEqual([]);
  });
});
