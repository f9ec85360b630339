import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nativeReadAhead } from "../kernels/native-kernel.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { prefetchFile } from "./prefetch-file.js";

let dir = "";
useTempDirWithHashCache("gyoza-prefetch-", (path) => (dir = path));

/** A sparse file of `size` bytes: nothing to really read. */
async function sparseFile(name: string, size: number): Promise<string> {
  const path = join(dir, name);
  const handle = await open(path, "w");
  await handle.truncate(size);
  await handle.close();
  return path;
}

describe("prefetchFile", () => {
  it("stops at the next piece when asked, before the end of a large file", async () => {
    const path = await sparseFile("large.ckpt", 256 << 20);
    let calls = 0;
    const readAhead = async () => {
      calls++;
    };
    const prefetch = prefetchFile(path, { readAhead });
    while (calls === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    const bytes = await prefetch.stop();
    expect(bytes).toBeLessThan(256 << 20);
    expect(bytes % (32 << 20)).toBe(0);
    expect(calls).toBeLessThan(8);
  });

  it("with a kernel read-ahead, asks the kernel for every byte of the file, in order", async () => {
    const size = 3 * (32 << 20) + 12_345;
    const path = await sparseFile("sparse.ckpt", size);
    const asked: [number, number][] = [];
    const readAhead = async (_fd: number, offset: number, length: number) => {
      asked.push([offset, length]);
    };
    expect(await prefetchFile(path, { readAhead }).done).toBe(size);
    let next = 0;
    for (const [offset, length] of asked) {
      expect(offset).toBe(next);
      next += length;
    }
    expect(next).toBe(size);
  });

  it("uses the native addon's readahead(2) where it is built", async () => {
    const readAhead = nativeReadAhead();
    if (!readAhead) return; // no compiler on this machine: nothing is prefetched there
    const path = join(dir, "real.ckpt");
    await writeFile(path, Buffer.alloc(5_000_000, 3));
    expect(await prefetchFile(path, { readAhead }).done).toBe(5_000_000);
    await expect(readAhead(1 << 20, 0, 4096)).rejects.toThrow(/bad file descriptor/i);
  });

  it("gives up quietly on a file that does not exist (the merge's own open reports it)", async () => {
    const readAhead = async () => {};
    expect(await prefetchFile(join(dir, "missing.ckpt"), { readAhead }).stop()).toBe(0);
  });
});

describe("prefetch along ranges", () => {
  it("asks the kernel for the given ranges in the given order, near neighbours joined, long ones split", async () => {
    const path = await sparseFile("ranges.ckpt", 200 << 20);
    const asked: [number, number][] = [];
    const readAhead = async (_fd: number, offset: number, length: number) => {
      asked.push([offset, length]);
    };
    const ranges = [
      { offset: 150 << 20, length: 1000 }, // the end of the file first, as a ckpt → safetensors merge reads CLIP
      { offset: (150 << 20) + 1100, length: 5000 }, // 100 bytes on: the zip records between two tensors
      { offset: (150 << 20) - 3000, length: 2000 }, // just before: a module's tensors taken in name order
      { offset: 0, length: 40 << 20 }, // longer than one request: split
      { offset: 250 << 20, length: 10 }, // past the end: dropped
    ];
    expect(await prefetchFile(path, { readAhead, ranges }).done).toBe(9100 + (40 << 20));
    expect(asked).toEqual([
      [(150 << 20) - 3000, 9100],
      [0, 32 << 20],
      [32 << 20, 8 << 20],
    ]);
  });
});
