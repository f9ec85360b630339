import { constants } from "node:fs";
import { open, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BufferPool } from "../stream/buffer-pool.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { FileByteSource } from "./byte-source.js";
import { DIRECT_READ_ALIGN, type QueuedFile, ReadQueue, type StreamMemory } from "./read-queue.js";
import { openTorchCheckpoint } from "./torch/open-torch-checkpoint.js";
import { writeTorchCheckpoint } from "./torch/write-torch-checkpoint.js";

let dir = "";
useTempDirWithHashCache("gyoza-read-queue-", (path) => {
  dir = path;
});

/** A file of `length` bytes whose every byte tells its position (and the file's seed). */
async function patternFile(name: string, length: number, seed: number) {
  const bytes = Uint8Array.from({ length }, (_, i) => (i * 31 + (i >> 8) * 7 + seed) & 0xff);
  const path = join(dir, name);
  await writeFile(path, bytes);
  const handle = await open(path, "r");
  const file: QueuedFile = { handle, name: path };
  return { bytes, path, file, handle };
}

describe("ReadQueue", () => {
  it("joins waiting reads of neighbouring bytes into far fewer calls, each caller getting its own bytes", async () => {
    const a = await patternFile("a.bin", 1 << 20, 1);
    const b = await patternFile("b.bin", 1 << 20, 2);
    try {
      const queue = new ReadQueue(1);
      // as a merge asks: A's next range, B's next range, A's, B's… of uneven sizes
      const sizes = Array.from({ length: 60 }, (_, n) => 1000 + ((n * 7919) % 9000));
      const reads: { bytes: Uint8Array; done: Promise<Uint8Array> }[] = [];
      let at = 0;
      for (const size of sizes) {
        for (const { file, bytes } of [a, b])
          reads.push({
            bytes: bytes.subarray(at, at + size),
            done: queue.read(file, new Uint8Array(size), at),
          });
        at += size;
      }
      for (const { bytes, done } of reads) expect(Buffer.from(await done).equals(bytes)).toBe(true);
      // one slot: the first read runs alone, then the waiting ones go in batches per file
      expect(queue.calls).toBeLessThanOrEqual(1 + 2 * Math.ceil(sizes.length / 64) + 2);
      expect(queue.calls).toBeLessThan(reads.length / 10);
    } finally {
      await Promise.all([a.handle.close(), b.handle.close()]);
    }
  });

  it("never joins across a gap or past the batch limits", async () => {
    const a = await patternFile("a.bin", 1 << 20, 3);
    try {
      const queue = new ReadQueue(1, 64 << 10, 4);
      const blocker = queue.read(a.file, new Uint8Array(10), 0);
      // 8 neighbours of 16 KiB (two batches of 4 by count), then 4 of 40 KiB (one per batch by
      // bytes), then a range that starts one byte after the last one ends
      const ranges: [number, number][] = [];
      let at = 1000;
      for (let n = 0; n < 8; n++, at += 16 << 10) ranges.push([at, 16 << 10]);
      for (let n = 0; n < 4; n++, at += 40 << 10) ranges.push([at, 40 << 10]);
      ranges.push([at + 1, 500]);
      const done = ranges.map(([offset, length]) => queue.read(a.file, new Uint8Array(length), offset));
      await blocker;
      for (const [n, [offset, length]] of ranges.entries())
        expect(Buffer.from(await done[n]!).equals(a.bytes.subarray(offset, offset + length))).toBe(true);
      expect(queue.calls).toBe(1 + 2 + 4 + 1);
    } finally {
      await a.handle.close();
    }
  });

  it("fills the ranges before the end of a file that shrank and fails the ones after it", async () => {
    const a = await patternFile("a.bin", 1 << 20, 4);
    try {
      await truncate(a.path, 45_000); // after the caller checked the ranges against the old size
      const queue = new ReadQueue(1);
      const blocker = queue.read(a.file, new Uint8Array(10), 0);
      // the ten wait behind the first read, so they go as one batch
      const ranges = Array.from({ length: 10 }, (_, n) => [n * 10_000, 10_000] as const);
      const done = ranges.map(([offset, length]) => queue.read(a.file, new Uint8Array(length), offset));
      await blocker;
      const results = await Promise.allSettled(done);
      for (const [n, result] of results.entries()) {
        if (n < 4) {
          expect(result.status).toBe("fulfilled");
          const bytes = (result as PromiseFulfilledResult<Uint8Array>).value;
          expect(Buffer.from(bytes).equals(a.bytes.subarray(n * 10_000, (n + 1) * 10_000))).toBe(true);
        } else {
          expect(result.status).toBe("rejected");
          expect(String((result as PromiseRejectedResult).reason)).toMatch(/shrank/);
        }
      }
      expect(queue.calls).toBe(3); // the first read, the batch's short read, the read that found the end
      // the queue goes on after a failed batch
      expect([...(await queue.read(a.file, new Uint8Array(3), 100))]).toEqual([
        ...a.bytes.subarray(100, 103),
      ]);
    } finally {
      await a.handle.close();
    }
  });

  it("answers an empty read at once and keeps at most `slots` calls in flight", async () => {
    const a = await patternFile("a.bin", 1 << 16, 5);
    try {
      const queue = new ReadQueue(2);
      expect((await queue.read(a.file, new Uint8Array(0), 0)).byteLength).toBe(0);
      expect(queue.calls).toBe(0);
      let inFlight = 0;
      let most = 0;
      const counted: QueuedFile = {
        name: a.path,
        handle: new Proxy(a.handle, {
          get(target, property) {
            const value = Reflect.get(target, property, target) as unknown;
            if (property !== "read" && property !== "readv") return value;
            return async (...args: unknown[]) => {
              most = Math.max(most, ++inFlight);
              try {
                return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
              } finally {
                inFlight--;
              }
            };
          },
        }),
      };
      // scattered ranges: nothing to join, so each is a call of its own
      const done = Array.from({ length: 30 }, (_, n) =>
        queue.read(counted, new Uint8Array(100), ((n * 7) % 30) * 1000),
      );
      await Promise.all(done);
      expect(most).toBe(2);
      expect(queue.calls).toBe(30);
    } finally {
      await a.handle.close();
    }
  });

  it("joins reads a few bytes apart when given a gap allowance, and reads each caller exactly its bytes", async () => {
    const a = await patternFile("a.bin", 1 << 20, 6);
    try {
      const queue = new ReadQueue(1, 64 << 10, 64, 200);
      const blocker = queue.read(a.file, new Uint8Array(10), 0);
      // ranges 1..200 bytes apart (joined, 64 KiB a batch), then one 201 bytes after (a call of its own)
      const ranges: [number, number][] = [];
      let at = 1000;
      for (let n = 0; n < 40; n++) {
        const length = 500 + ((n * 7919) % 3000);
        ranges.push([at, length]);
        at += length + 1 + ((n * 37) % 200);
      }
      const last = ranges.at(-1)!;
      ranges.push([last[0] + last[1] + 201, 300]);
      // asked in three runs out of order, as a .ckpt merge asks for its tensors
      const third = Math.ceil(ranges.length / 3);
      const shuffled = [
        ...ranges.slice(2 * third),
        ...ranges.slice(0, third),
        ...ranges.slice(third, 2 * third),
      ];
      const done = shuffled.map(([offset, length]) => queue.read(a.file, new Uint8Array(length), offset));
      await blocker;
      for (const [n, [offset, length]] of shuffled.entries())
        expect(Buffer.from(await done[n]!).equals(a.bytes.subarray(offset, offset + length))).toBe(true);
      const joinedBytes = last[0] + last[1] - ranges[0]![0];
      // the blocker; the runs in batches of up to 64 KiB (a batch ends where a run was taken); the far one
      expect(queue.calls).toBeLessThanOrEqual(1 + Math.ceil(joinedBytes / (64 << 10)) + 2 + 1);
      expect(queue.calls).toBeGreaterThanOrEqual(3);
    } finally {
      await a.handle.close();
    }
  });

  it("fails the ranges after a gap that runs past the end of a file that shrank", async () => {
    const a = await patternFile("a.bin", 1 << 20, 7);
    try {
      await truncate(a.path, 10_050); // mid-gap between the 2nd and 3rd range
      const queue = new ReadQueue(1, 1 << 20, 64, 4096);
      const blocker = queue.read(a.file, new Uint8Array(10), 0);
      const ranges = [
        [100, 5000],
        [5100, 4900],
        [10_100, 1000],
      ] as const;
      const done = ranges.map(([offset, length]) => queue.read(a.file, new Uint8Array(length), offset));
      await blocker;
      const results = await Promise.allSettled(done);
      expect(results.map((result) => result.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
      expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/shrank/);
      expect(Buffer.from(await done[1]!).equals(a.bytes.subarray(5100, 10_000))).toBe(true);
    } finally {
      await a.handle.close();
    }
  });

  it("reads every tensor of a torch .ckpt, stored front to back, in a few calls instead of one per tensor", async () => {
    const path = join(dir, "model.ckpt");
    const tensors = Array.from({ length: 300 }, (_, n) => ({
      key: `model.layer${n}.weight`,
      dtype: "F16" as const,
      shape: [1 + ((n * 13) % 700)],
      bytes: Uint8Array.from({ length: 2 * (1 + ((n * 13) % 700)) }, (_, i) => (n * 7 + i) & 0xff),
    }));
    await writeTorchCheckpoint(
      path,
      tensors.map(({ key, dtype, shape, bytes }) => ({ key, dtype, shape, read: async () => bytes })),
    );
    const source = await FileByteSource.open(path);
    const handle = await open(path, "r");
    try {
      const checkpoint = await openTorchCheckpoint(source, path);
      const stored = [...checkpoint.tensors.values()].sort((x, y) => x.byteOffset - y.byteOffset);
      const queue = new ReadQueue(1, 16 << 20, 64, 4096);
      const file: QueuedFile = { handle, name: path };
      const done = stored.map((tensor) =>
        queue.read(file, new Uint8Array(tensor.byteLength), tensor.byteOffset),
      );
      const expected = new Map(tensors.map((tensor) => [tensor.key, tensor.bytes]));
      for (const [n, tensor] of stored.entries())
        expect(Buffer.from(await done[n]!).equals(expected.get(tensor.key)!)).toBe(true);
      // the first read alone, then 64 tensors a call; without the gap allowance: one call each
      expect(queue.calls).toBeLessThanOrEqual(1 + Math.ceil((stored.length - 1) / 64));
    } finally {
      await Promise.all([handle.close(), source.close()]);
    }
  });
});

/**
 * A pattern file (`patternFile`) with an O_DIRECT descriptor as well, or undefined where its file
 * system refuses O_DIRECT (tmpfs).
 */
async function directPatternFile(name: string, length: number, seed: number) {
  const a = await patternFile(name, length, seed);
  const direct =
    constants.O_DIRECT === undefined
      ? undefined
      : await open(a.path, constants.O_RDONLY | constants.O_DIRECT).catch(() => undefined);
  if (!direct) {
    await a.handle.close();
    return undefined;
  }
  const file: QueuedFile = { ...a.file, direct };
  return {
    ...a,
    file,
    close: async () => {
      await direct.close();
      await a.handle.close();
    },
  };
}

describe("ReadQueue direct reads", () => {
  it("reads waiting neighbouring ranges with one aligned read and gives each caller exactly its bytes", async (context) => {
    const a = await directPatternFile("direct.bin", (1 << 20) + 123, 8);
    if (!a) return context.skip(); // this file system takes no O_DIRECT
    const { file } = a;
    try {
      const pool = new BufferPool();
      const memory = pool;
      const queue = new ReadQueue(1, undefined, undefined, 4096);
      const blocker = queue.readDirect(file, 8, 16, memory);
      // unaligned ranges (multiples of 8), a few bytes apart, asked out of order; the last one ends at
      // the end of the file, inside an aligned block
      const ranges: [number, number][] = [];
      let at = 5000;
      for (let n = 0; n < 12; n++) {
        const length = 8 * (100 + ((n * 7919) % 3000));
        ranges.push([at, length]);
        at += length + 8 * (n % 3);
      }
      ranges.push([a.bytes.byteLength - 3000, 3000]);
      const order = [...ranges.slice(6), ...ranges.slice(0, 6)];
      const done = order.map(([offset, length]) => queue.readDirect(file, offset, length, memory));
      await blocker;
      const buffers = await Promise.all(done);
      for (const [n, [offset, length]] of order.entries()) {
        expect(buffers[n]!.byteLength).toBe(length);
        expect(Buffer.from(buffers[n]!).equals(a.bytes.subarray(offset, offset + length))).toBe(true);
        // each part keeps its offset's alignment within the aligned read
        expect(buffers[n]!.byteOffset % DIRECT_READ_ALIGN).toBe(offset % DIRECT_READ_ALIGN);
      }
      // the blocker; ranges 6–11 as one read (joined forward from the oldest waiting one); the range
      // at the end of the file; ranges 0–5 as one read
      expect(queue.calls).toBe(4);
      expect(file.directRefused).toBeUndefined();
      // the memory comes back once every caller has given its part back, in any order
      pool.release(await blocker);
      for (const buffer of buffers.reverse()) pool.release(buffer);
      expect(pool.streamHeld).toBe(0);
    } finally {
      await a.close();
    }
  });

  it("reads ordinarily from then on when the file system refuses a direct read, with the same bytes", async (context) => {
    const a = await directPatternFile("refused.bin", 1 << 18, 9);
    if (!a) return context.skip();
    const { file } = a;
    try {
      const pool = new BufferPool();
      // memory one byte off alignment: the kernel answers EINVAL, as a file system without O_DIRECT does
      const memory: StreamMemory = {
        acquireStreamAligned: (bytes, align) =>
          pool.acquireStreamAligned(bytes + align, align)!.subarray(1, bytes + 1),
        share: (buffer, begin, end) => pool.share(buffer, begin, end),
        release: (buffer) => pool.release(buffer),
        acquireStream: (bytes) => pool.acquireStream(bytes),
      };
      const queue = new ReadQueue(2);
      const first = await queue.readDirect(file, 4096, 10_000, memory);
      expect(Buffer.from(first).equals(a.bytes.subarray(4096, 14_096))).toBe(true);
      expect(file.directRefused).toBe(true);
      const second = await queue.readDirect(file, 80_000, 512, memory);
      expect(Buffer.from(second).equals(a.bytes.subarray(80_000, 80_512))).toBe(true);
    } finally {
      await a.close();
    }
  });

  it("fails the direct reads past the end of a file that shrank, and gives their memory back", async (context) => {
    const a = await directPatternFile("shrunk.bin", 1 << 20, 10);
    if (!a) return context.skip();
    const { file } = a;
    try {
      await truncate(a.path, 100_000); // after the caller checked the ranges against the old size
      const pool = new BufferPool();
      const memory = pool;
      const queue = new ReadQueue(1);
      const results = await Promise.allSettled([
        queue.readDirect(file, 8000, 1000, memory),
        queue.readDirect(file, 200_000, 1000, memory),
        queue.readDirect(file, 96_000, 8000, memory), // across the new end, inside an aligned block
      ]);
      expect(results[0]!.status).toBe("fulfilled");
      expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/shrank/);
      expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/shrank/);
      pool.release((results[0] as PromiseFulfilledResult<Uint8Array>).value);
      expect(pool.streamHeld).toBe(0);
    } finally {
      await a.close();
    }
  });
});
