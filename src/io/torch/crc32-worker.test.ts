import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BufferByteSource } from "../byte-source.js";
import { Crc32Worker, crc32Combine } from "./crc32-worker.js";
import { readZipDirectory } from "./read-zip-directory.js";
import { TorchCheckpointWriter } from "./torch-checkpoint-writer.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-crc32-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + seed * 7 + (i >> 9) * 13) & 0xff;
  return bytes;
}

describe("crc32Combine", () => {
  it("joins the CRC-32s of the pieces of any split into the CRC-32 of the whole", () => {
    const bytes = pattern(70_001, 1);
    for (const cuts of [[0], [1], [35_000], [69_999, 70_000], [3, 4, 5, 40_000], [70_001]]) {
      let crc = 0;
      let from = 0;
      for (const to of [...cuts, bytes.byteLength]) {
        const piece = bytes.subarray(from, to);
        crc = from === 0 ? zlibCrc32(piece) : crc32Combine(crc, zlibCrc32(piece), piece.byteLength);
        from = to;
      }
      expect(crc, `cut at ${cuts}`).toBe(zlibCrc32(bytes));
    }
  });

  it("is associative for lengths past 4 GiB (a zip64 entry's)", () => {
    const [a, b, c] = [0x12345678, 0x9abcdef0, 0x0fedcba9];
    const [lengthB, lengthC] = [5 * 2 ** 32 + 17, 3 * 2 ** 31 + 5];
    expect(crc32Combine(crc32Combine(a, b, lengthB), c, lengthC)).toBe(
      crc32Combine(a, crc32Combine(b, c, lengthC), lengthB + lengthC),
    );
  });
});

describe("Crc32Worker", () => {
  it("computes the CRC-32 of shared memory in place and refuses memory that is not shared", async () => {
    const worker = Crc32Worker.create();
    if (!worker) return; // Node < 20.15: the writer CRCs on its own thread
    try {
      const shared = Buffer.from(new SharedArrayBuffer(1 << 20));
      shared.set(pattern(1 << 20, 2));
      expect(await worker.crc32(shared.subarray(1000, 600_000))).toBe(
        zlibCrc32(shared.subarray(1000, 600_000)),
      );
      await expect(worker.crc32(new Uint8Array(10))).rejects.toThrow(/shared/);
    } finally {
      await worker.dispose();
    }
  });
});

describe("TorchCheckpointWriter with the CRC-32 thread", () => {
  it("writes the same file whether big pieces are computed into its blocks or handed over, each entry's CRC-32 right", async () => {
    const specs = [
      // 34 MiB: more than the writer's six 4 MiB blocks, so blocks are reused while it CRCs
      { key: "model.big.weight", dtype: "F16" as const, shape: [17 << 20], bytes: pattern(34 << 20, 3) },
      { key: "model.mid.weight", dtype: "F32" as const, shape: [300_000], bytes: pattern(1_200_000, 4) },
      { key: "model.small.bias", dtype: "F32" as const, shape: [7], bytes: pattern(28, 5) },
    ];
    const write = async (name: string, inPlace: boolean, pieceBytes: number) => {
      const path = join(dir, name);
      const writer = await TorchCheckpointWriter.create(path, specs, { blockMemory: {} });
      const byKey = new Map(specs.map((s) => [s.key, s.bytes]));
      for (const planned of writer.order) {
        const bytes = byKey.get(planned.key)!;
        for (let at = 0; at < bytes.byteLength; ) {
          const n = Math.min(pieceBytes, bytes.byteLength - at);
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
    };
    const computed = await write("in-place.ckpt", true, 1 << 20);
    const handed = await write("handed.ckpt", false, 100_000);
    expect(Buffer.from(computed).equals(Buffer.from(handed))).toBe(true);
    const view = new DataView(computed.buffer, computed.byteOffset, computed.byteLength);
    for (const entry of await readZipDirectory(new BufferByteSource(computed))) {
      const at = entry.headerOffset;
      const dataOffset = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
      expect(entry.crc32, entry.name).toBe(zlibCrc32(computed.subarray(dataOffset, dataOffset + entry.size)));
      if (entry.size > 0)
        expect(view.getUint32(dataOffset + entry.size + 4, true), `${entry.name}: descriptor`).toBe(
          entry.crc32,
        );
    }
  });
});
