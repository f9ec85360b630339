import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIRECT_BLOCK_BYTES } from "../io/direct-appender.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { readTensorBytes } from "../io/read-tensor.js";
import { SafetensorsWriter } from "../io/safetensors/write-safetensors.js";
import { type DeferredChunk, type OutputTensor, writeDeferred, writeOutput } from "./write-output.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-write-output-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Byte `i` of a deterministic stream (so a misplaced range cannot match by accident). */
const byteAt = (i: number, seed: number) => (Math.imul(i + seed, 2654435761) >>> 24) & 0xff;
const expectedBytes = (length: number, seed: number) =>
  Uint8Array.from({ length }, (_, i) => byteAt(i, seed));

interface Fill {
  offset: number;
  length: number;
}

/** A deferred chunk of bytes [first, first + length) of the stream, recording every fill (from `first`). */
function deferred(first: number, length: number, seed: number, elementBytes: number, fills: Fill[] = []) {
  const chunk: DeferredChunk & { released: number } = {
    byteLength: length,
    elementBytes,
    released: 0,
    fill(target, offset) {
      fills.push({ offset: first + offset, length: target.byteLength });
      for (let i = 0; i < target.byteLength; i++) target[i] = byteAt(first + offset + i, seed);
    },
    release() {
      chunk.released++;
    },
  };
  return chunk;
}

describe("deferred chunks (computed straight into the write blocks)", () => {
  it("are split only at element boundaries, an element straddling two blocks computed on its own", async () => {
    // a 3-byte tensor first (kept in this order) puts every f32 element 3 bytes off the block boundaries
    const elements = (DIRECT_BLOCK_BYTES * 3) / 8 + 5; // 1.5 blocks of f32 and a little more
    const path = join(dir, "straddle.safetensors");
    const writer = await SafetensorsWriter.create(
      path,
      [
        { key: "odd", dtype: "U8", shape: [3] },
        { key: "values", dtype: "F32", shape: [elements] },
      ],
      { keepOrder: true },
    );
    await writer.write(Uint8Array.of(1, 2, 3));
    const fills: Fill[] = [];
    const half = Math.floor(elements / 2) * 4;
    const chunks = [deferred(0, half, 7, 4, fills), deferred(half, elements * 4 - half, 7, 4, fills)];
    for (const chunk of chunks) await writeDeferred(writer, chunk);
    await writer.finish();

    expect(chunks.map((chunk) => chunk.released)).toEqual([1, 1]);
    for (const fill of fills) {
      expect(fill.offset % 4).toBe(0);
      expect(fill.length % 4).toBe(0);
    }
    // the element across the first block boundary went alone; every other fill went straight in
    const blockEnd = DIRECT_BLOCK_BYTES - writer.headerBytes - 3; // in the tensor's bytes
    const across = fills.filter((fill) => fill.offset < blockEnd && blockEnd < fill.offset + fill.length);
    expect(across).toEqual([{ offset: blockEnd - (blockEnd % 4), length: 4 }]);
    expect(fills.length).toBeLessThan(10);

    const checkpoint = await openCheckpoint(path);
    try {
      expect([...(await readTensorBytes(checkpoint.tensors.get("odd")!))]).toEqual([1, 2, 3]);
      const values = await readTensorBytes(checkpoint.tensors.get("values")!);
      expect(Buffer.from(values).equals(Buffer.from(expectedBytes(elements * 4, 7)))).toBe(true);
    } finally {
      await checkpoint.close();
    }
  });

  it("give the same file as finished buffers, as safetensors and as a ckpt", async () => {
    const shapes = [
      { key: "big", dtype: "F16" as const, shape: [DIRECT_BLOCK_BYTES + 3] }, // spans blocks
      { key: "small", dtype: "F16" as const, shape: [5, 7] },
    ];
    const tensors = (asDeferred: boolean): OutputTensor[] =>
      shapes.map((spec, index) => ({
        ...spec,
        *chunks() {
          const total = spec.shape.reduce((x, y) => x * y) * 2;
          // uneven chunks, so chunk and block boundaries fall in different places
          for (let at = 0; at < total; at += 1_000_002) {
            const n = Math.min(1_000_002, total - at);
            const chunk = asDeferred ? deferred(at, n, index, 2) : expectedBytes(at + n, index).subarray(at);
            yield { holds: n, ready: Promise.resolve(chunk) };
          }
        },
      }));
    for (const extension of ["safetensors", "ckpt"] as const) {
      const written: Record<string, Uint8Array>[] = [];
      for (const asDeferred of [false, true]) {
        const path = join(dir, `${asDeferred ? "deferred" : "buffers"}.${extension}`);
        await writeOutput(path, tensors(asDeferred), { format: extension, metadata: { title: "t" } });
        const checkpoint = await openCheckpoint(path);
        try {
          const bytes: Record<string, Uint8Array> = {};
          for (const [key, tensor] of checkpoint.tensors) bytes[key] = await readTensorBytes(tensor);
          written.push(bytes);
        } finally {
          await checkpoint.close();
        }
      }
      expect(Object.keys(written[1]!).sort(), extension).toEqual(["big", "small"]);
      for (const key of ["big", "small"])
        expect(
          Buffer.from(written[1]![key]!).equals(Buffer.from(written[0]![key]!)),
          `${extension} ${key}`,
        ).toBe(true);
    }
  });

  it("write a .ckpt byte for byte the same on every run, as buffers or computed in place, timing it", async () => {
    const specs = [
      { key: "small", dtype: "F16" as const, shape: [5, 7] },
      { key: "big", dtype: "F32" as const, shape: [DIRECT_BLOCK_BYTES / 4 + 3] }, // spans blocks
      { key: "ids", dtype: "I64" as const, shape: [1, 77] },
    ];
    const tensors = (asDeferred: boolean): OutputTensor[] =>
      specs.map((spec, index) => ({
        ...spec,
        *chunks() {
          const elementBytes = spec.dtype === "F16" ? 2 : spec.dtype === "F32" ? 4 : 8;
          const total = spec.shape.reduce((x, y) => x * y) * elementBytes;
          for (let at = 0; at < total; at += 1_000_008) {
            const n = Math.min(1_000_008, total - at);
            const chunk = asDeferred
              ? deferred(at, n, index, elementBytes)
              : expectedBytes(at + n, index).subarray(at);
            yield { holds: n, ready: Promise.resolve(chunk) };
          }
        },
      }));
    const files: Buffer[] = [];
    for (const [run, asDeferred] of [false, true, true].entries()) {
      const path = join(dir, `run-${run}.ckpt`);
      const result = await writeOutput(path, tensors(asDeferred), { format: "ckpt" });
      expect(result.timings?.compute).toBeGreaterThanOrEqual(0);
      files.push(await readFile(path));
    }
    expect(files[1]!.equals(files[0]!)).toBe(true);
    expect(files[2]!.equals(files[0]!)).toBe(true);
  });

  it("are released and leave no partial file when computing one throws", async () => {
    const path = join(dir, "failing.safetensors");
    const failing = deferred(0, 1 << 20, 1, 2);
    failing.fill = () => {
      throw new Error("the method failed");
    };
    await expect(
      writeOutput(
        path,
        [
          {
            key: "x",
            dtype: "F16",
            shape: [1 << 19],
            *chunks() {
              yield { holds: 0, ready: Promise.resolve(failing) };
            },
          },
        ],
        { format: "safetensors" },
      ),
    ).rejects.toThrow("the method failed");
    expect(failing.released).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("read-ahead", () => {
  it("starts the reads of later chunks, across tensors, while the first is still being read, up to its budget", async () => {
    const taken: number[] = [];
    const resolvers: (() => void)[] = [];
    const tensors: OutputTensor[] = Array.from({ length: 10 }, (_, index) => ({
      key: `t${index}`,
      dtype: "U8" as const,
      shape: [1 << 20],
      *chunks() {
        taken.push(index);
        const bytes = expectedBytes(1 << 20, index);
        yield {
          holds: bytes.byteLength,
          ready: new Promise<Uint8Array>((resolve) => resolvers.push(() => resolve(bytes))),
        };
      },
    }));
    const path = join(dir, "ahead.safetensors");
    const writing = writeOutput(path, tensors, { format: "safetensors", readAheadBytes: 4 << 20 });
    // the writer starts (temp file, hashing thread), takes chunks up to its budget and waits on the first
    for (let waited = 0; taken.length === 0 && waited < 10_000; waited += 10)
      await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(taken).toEqual([0, 1, 2, 3]); // 4 MiB of 1 MiB chunks, none read yet
    while (resolvers.length > 0) {
      resolvers.shift()!();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await writing;
    expect(taken).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const checkpoint = await openCheckpoint(path);
    try {
      for (let index = 0; index < 10; index++) {
        const bytes = await readTensorBytes(checkpoint.tensors.get(`t${index}`)!);
        expect(Buffer.from(bytes).equals(Buffer.from(expectedBytes(1 << 20, index)))).toBe(true);
      }
    } finally {
      await checkpoint.close();
    }
  });

  it("gives back the buffers of chunks read ahead when a read fails, and leaves no partial file", async () => {
    const released: Uint8Array[] = [];
    const later = deferred(0, 1024, 3, 1);
    const tensors: OutputTensor[] = [
      {
        key: "a",
        dtype: "U8",
        shape: [1024],
        *chunks() {
          yield { holds: 1024, ready: Promise.reject(new Error("read failed: disk gone")) };
        },
      },
      {
        key: "b",
        dtype: "U8",
        shape: [2048],
        *chunks() {
          yield { holds: 1024, ready: Promise.resolve(expectedBytes(1024, 1)) };
          yield { holds: 1024, ready: Promise.resolve(later) };
        },
      },
    ];
    await expect(
      writeOutput(join(dir, "failed.safetensors"), tensors, {
        format: "safetensors",
        release: (chunk) => released.push(chunk),
      }),
    ).rejects.toThrow("read failed: disk gone");
    expect(released.length).toBe(1);
    expect(later.released).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("timings", () => {
  it("tell time spent waiting for reads from time spent computing", async () => {
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    const slowRead = <T>(value: T, ms: number) => new Promise<T>((resolve) => setTimeout(resolve, ms, value));
    const tensor = (
      key: string,
      bytes: number,
      seed: number,
      readMs: number,
      computeMs: number,
    ): OutputTensor => ({
      key,
      dtype: "U8",
      shape: [bytes],
      *chunks() {
        const chunk = deferred(0, bytes, seed, 1);
        const fill = chunk.fill.bind(chunk);
        chunk.fill = (target, offset) => {
          busy(computeMs);
          fill(target, offset);
        };
        yield { holds: bytes, ready: slowRead(chunk, readMs) };
      },
    });
    // reads of 80 ms, each started only when the one before is written (a tiny read-ahead budget)
    const readBound = await writeOutput(
      join(dir, "reads.safetensors"),
      [tensor("a", 1000, 1, 80, 0), tensor("b", 1000, 2, 80, 0)],
      { format: "safetensors", readAheadBytes: 1 },
    );
    // reads at once, 60 ms of computing each
    const computeBound = await writeOutput(
      join(dir, "compute.safetensors"),
      [tensor("a", 1000, 1, 0, 60), tensor("b", 1000, 2, 0, 60)],
      { format: "safetensors", readAheadBytes: 1 },
    );
    expect(readBound.timings!.inputs).toBeGreaterThanOrEqual(0.15);
    expect(readBound.timings!.compute).toBeLessThan(0.05);
    expect(computeBound.timings!.compute).toBeGreaterThanOrEqual(0.11);
    expect(computeBound.timings!.inputs).toBeLessThan(0.05);
    for (const { timings } of [readBound, computeBound]) {
      expect(timings!.output).toBeGreaterThanOrEqual(0);
      expect(timings!.finish).toBeGreaterThan(0); // fsync and rename
    }
  });
});
