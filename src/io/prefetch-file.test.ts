import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nativeReadAhead } from "../kernels/native-kernel.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { prefetchFile, prefetchOutOfOrderInputs, stopPrefetches } from "./prefetch-file.js";

let dir = "";
useTempDirWithHashCache("gyoza-prefetch-", (path) => (dir = path));

describe("prefetchFile", () => {
  it("reads the whole file front to back when left to finish", async () => {
    const path = join(dir, "model.ckpt");
    await writeFile(path, Buffer.alloc(1_000_003, 7));
    expect(await prefetchFile(path, { bufferBytes: 4096 }).done).toBe(1_000_003);
  });

  it("stops at the next buffer when asked, before the end of a large file", async () => {
    const path = join(dir, "large.ckpt");
    await writeFile(path, Buffer.alloc(64 << 20, 1));
    const prefetch = prefetchFile(path, { bufferBytes: 4096 });
    const bytes = await prefetch.stop();
    expect(bytes).toBeLessThan(64 << 20);
    expect(bytes % 4096).toBe(0);
  });

  it("with a kernel read-ahead, asks the kernel for every byte of the file, in order", async () => {
    const size = 3 * (32 << 20) + 12_345;
    const path = join(dir, "sparse.ckpt");
    const handle = await open(path, "w");
    await handle.truncate(size); // sparse: nothing to really read
    await handle.close();
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
    if (!readAhead) return; // no compiler on this machine: the buffered prefetch above covers it
    const path = join(dir, "real.ckpt");
    await writeFile(path, Buffer.alloc(5_000_000, 3));
    expect(await prefetchFile(path, { readAhead }).done).toBe(5_000_000);
    await expect(readAhead(1 << 20, 0, 4096)).rejects.toThrow(/bad file descriptor/i);
  });

  it("gives up quietly on a file that does not exist (the merge's own open reports it)", async () => {
    expect(await prefetchFile(join(dir, "missing.ckpt")).stop()).toBe(0);
  });
});

describe("prefetchOutOfOrderInputs", () => {
  it("prefetches each torch input of a safetensors output once, and nothing for a .ckpt output", async () => {
    const a = join(dir, "a.ckpt");
    const b = join(dir, "b.safetensors");
    await writeFile(a, Buffer.alloc(10_000, 1));
    await writeFile(b, Buffer.alloc(10_000, 2));
    const inputs = [
      { path: a, format: "ckpt-zip" as const },
      { path: b, format: "safetensors" as const },
      { path: a, format: "ckpt-zip" as const },
    ];
    const forSafetensors = prefetchOutOfOrderInputs("safetensors", inputs);
    expect(forSafetensors).toHaveLength(1);
    expect(await forSafetensors[0]!.done).toBe(10_000);
    const forCkpt = prefetchOutOfOrderInputs("ckpt", inputs);
    expect(forCkpt).toHaveLength(0);
    await stopPrefetches(forCkpt);
  });
});
