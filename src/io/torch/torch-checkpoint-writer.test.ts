import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BufferByteSource, FileByteSource } from "../byte-source.js";
import type { DType } from "../dtype.js";
import { readTensorBytes } from "../read-tensor.js";
import { openTorchCheckpoint } from "./open-torch-checkpoint.js";
import { readZipDirectory } from "./read-zip-directory.js";
import { TorchCheckpointWriter, type TorchCheckpointWriterOptions } from "./torch-checkpoint-writer.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-torch-stream-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Spec {
  key: string;
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

function spec(key: string, dtype: DType, shape: number[], itemSize: number, seed: number): Spec {
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = Uint8Array.from(
    { length: count * itemSize },
    (_, i) => (i * 131 + seed * 7 + (i >> 9)) & 0xff,
  );
  return { key, dtype, shape, bytes };
}

// state-dict order on purpose unlike the reference order (dtype, then name)
const tensors = (): Spec[] => [
  spec("model.b.weight", "F16", [300, 1000], 2, 1), // 600 kB: several pieces
  spec("model.a.weight", "F16", [17, 3], 2, 2),
  spec("cond.position_ids", "I64", [1, 77], 8, 3),
  spec("first.bias", "F32", [5], 4, 4),
  spec("edge.empty", "F32", [0, 5], 4, 5),
  spec("edge.scalar", "BF16", [], 2, 6),
];

/**
 * Streams the tensors in `pieceBytes` pieces, alternately handed over as buffers and computed in
 * place into the writer's blocks (as the merge engine does with deferred chunks).
 */
async function stream(
  path: string,
  specs: readonly Spec[],
  pieceBytes: number,
  options: TorchCheckpointWriterOptions = {},
): Promise<Uint8Array> {
  const writer = await TorchCheckpointWriter.create(path, specs, options);
  const byKey = new Map(specs.map((s) => [s.key, s]));
  let inPlace = false;
  for (const planned of writer.order) {
    const { bytes } = byKey.get(planned.key)!;
    for (let at = 0; at < bytes.byteLength; ) {
      const n = Math.min(pieceBytes, bytes.byteLength - at);
      inPlace = !inPlace;
      const space = inPlace ? await writer.reserveAppend(n) : undefined;
      if (space) {
        space.set(bytes.subarray(at, at + space.byteLength));
        writer.commitAppend(space.byteLength);
        at += space.byteLength;
      } else {
        await writer.write(bytes.slice(at, at + n));
        at += n;
      }
    }
  }
  await writer.finish();
  return new Uint8Array(await readFile(path));
}

describe("TorchCheckpointWriter", () => {
  it("writes the same bytes on every run, however the tensors' bytes are cut and handed over", async () => {
    const first = await stream(join(dir, "a.ckpt"), tensors(), 1 << 20);
    const again = await stream(join(dir, "b.ckpt"), tensors(), 1 << 20);
    const finely = await stream(join(dir, "c.ckpt"), tensors(), 4097, { blockMemory: {} });
    expect(Buffer.from(again).equals(Buffer.from(first))).toBe(true);
    expect(Buffer.from(finely).equals(Buffer.from(first))).toBe(true);
  });

  it("reads back every tensor, in state-dict order, with its bytes", async () => {
    const path = join(dir, "out.ckpt");
    await stream(path, tensors(), 65_536, { dataOrder: "reference", blockMemory: {} });
    const checkpoint = await openTorchCheckpoint(await FileByteSource.open(path), path);
    try {
      expect([...checkpoint.tensors.keys()]).toEqual(tensors().map((t) => t.key));
      for (const want of tensors()) {
        const stored = checkpoint.tensors.get(want.key)!;
        expect([stored.dtype, stored.shape]).toEqual([want.dtype, want.shape]);
        expect(Buffer.from(await readTensorBytes(stored)).equals(Buffer.from(want.bytes))).toBe(true);
        if (stored.byteLength > 0) expect(stored.byteOffset % 64).toBe(0);
      }
    } finally {
      await checkpoint.close();
    }
  });

  it("lays the storages out in reference order, torch's or an input's, keys numbered in state-dict order either way", async () => {
    const names = async (options: TorchCheckpointWriterOptions) => {
      const name = typeof options.dataOrder === "string" ? options.dataOrder : "input";
      const bytes = await stream(join(dir, `${name}.ckpt`), tensors(), 1 << 20, options);
      const entries = await readZipDirectory(new BufferByteSource(bytes));
      return entries.map((e) => e.name.replace("archive/", ""));
    };
    // reference: I64, F32, BF16, F16, then by name; storage i is the i-th tensor of the state dict
    expect(await names({ dataOrder: "reference" })).toEqual([
      "data.pkl",
      "byteorder",
      ...["2", "4", "3", "5", "1", "0"].map((key) => `data/${key}`),
      "version",
    ]);
    // following an input's layout: the keys it places first, then the rest in reference order
    const input = new Map([
      ["first.bias", 10],
      ["model.a.weight", 20],
      ["model.b.weight", 30],
    ]);
    expect(await names({ dataOrder: input })).toEqual([
      "data.pkl",
      "byteorder",
      ...["3", "1", "0", "2", "4", "5"].map((key) => `data/${key}`),
      "version",
    ]);
    expect(await names({ dataOrder: "torch" })).toEqual([
      "data.pkl",
      "byteorder",
      ...["0", "1", "2", "3", "4", "5"].map((key) => `data/${key}`),
      "version",
    ]);
  });

  it("writes local headers as torch does and the CRC-32 of every entry in its data descriptor and the directory", async () => {
    const bytes = await stream(join(dir, "crc.ckpt"), tensors(), 3000, { blockMemory: {} });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const entry of await readZipDirectory(new BufferByteSource(bytes))) {
      const at = entry.headerOffset;
      const dataOffset = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
      const data = bytes.subarray(dataOffset, dataOffset + entry.size);
      expect(entry.crc32, entry.name).toBe(zlibCrc32(data));
      expect(view.getUint32(at + 14, true), `${entry.name}: local CRC`).toBe(0);
      expect(view.getUint32(at + 22, true), `${entry.name}: local size`).toBe(0);
      if (entry.size === 0) continue;
      expect(view.getUint16(at + 6, true), `${entry.name}: flags`).toBe(0x0808);
      const descriptor = dataOffset + entry.size;
      expect(view.getUint32(descriptor, true)).toBe(0x08074b50);
      expect(view.getUint32(descriptor + 4, true), `${entry.name}: descriptor CRC`).toBe(entry.crc32);
      expect(view.getUint32(descriptor + 8, true)).toBe(entry.size);
    }
  });

  it("refuses bytes past a tensor's end and a finish before every tensor is written, leaving no file", async () => {
    const specs = tensors();
    const path = join(dir, "refused.ckpt");
    const overflowing = await TorchCheckpointWriter.create(path, specs);
    const first = specs.find((s) => s.key === overflowing.order[0]!.key)!;
    await expect(overflowing.write(new Uint8Array(first.bytes.byteLength + 2))).rejects.toThrow(
      /does not fit/,
    );
    const unfinished = await TorchCheckpointWriter.create(path, specs, { blockMemory: {} });
    await unfinished.write(first.bytes.subarray(0, 10));
    await expect(unfinished.finish()).rejects.toThrow(/was not fully written/);
    expect(await readdir(dir)).toEqual([]);
  });
});
