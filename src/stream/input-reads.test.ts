import { closeSync, constants, openSync } from "node:fs";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { nativeCachedBytes } from "../kernels/native-kernel.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { prepareInputReads } from "./input-reads.js";

let dir = "";
useTempDirWithHashCache("gyoza-input-reads-", (path) => (dir = path));

/** Whether the test's file system takes O_DIRECT (tmpfs does not). */
async function directSupported(path: string): Promise<boolean> {
  if (constants.O_DIRECT === undefined) return false;
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECT).catch(() => undefined);
  await handle?.close();
  return handle !== undefined;
}

describe("prepareInputReads", () => {
  it("reads a cold input taken front to back directly, and one taken out of order or cached through the cache", async (context) => {
    const paths = ["front.safetensors", "jumps.safetensors", "cached.safetensors", "hashing.safetensors"].map(
      (name) => join(dir, name),
    );
    for (const [i, path] of paths.entries())
      await writeSyntheticCheckpoint(path, { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: i + 1 });
    if (!(await directSupported(paths[0]!))) return context.skip();
    const checkpoints = await Promise.all(paths.map((path) => openCheckpoint(path)));
    try {
      const [front, jumps, cached, hashing] = checkpoints;
      const ranges = (order: "forward" | "backward") => {
        const all = [...front!.tensors.values()].map((t) => ({ offset: t.byteOffset, length: t.byteLength }));
        return order === "forward" ? all : all.reverse();
      };
      const reads = new Map([
        [front!.path, ranges("forward")],
        [jumps!.path, ranges("backward")],
        [cached!.path, ranges("forward")],
        [hashing!.path, ranges("forward")],
      ]);
      const prepared = await prepareInputReads(reads, {
        // `hashing` is hashed alongside the merge: not a candidate
        directCandidates: [front!, jumps!, cached!],
        cachedBytes: (fd, _offset, length) => (fd === cached!.file!.fd ? length : 0),
        readAhead: async () => {},
      });
      expect([...prepared.direct]).toEqual([front!.path]);
      expect(prepared.prefetches).toHaveLength(1); // the input read out of its order
      await Promise.all(prepared.prefetches.map((p) => p.stop()));
      // without the page-cache probe nothing is read directly
      const plain = await prepareInputReads(new Map([[jumps!.path, ranges("forward")]]), {
        directCandidates: [jumps!],
      });
      expect(plain).toEqual({ direct: new Set(), prefetches: [] });
    } finally {
      await Promise.all(checkpoints.map((c) => c.close()));
    }
  });
});

describe("the native addon's cachedBytes", () => {
  it("counts a file just written as in the page cache, and refuses a range it cannot take", async (context) => {
    const cachedBytes = nativeCachedBytes();
    if (!cachedBytes) return context.skip(); // no compiler on this machine: no direct reads there
    const path = join(dir, "written.bin");
    await writeFile(path, Buffer.alloc(3_000_000, 7));
    const fd = openSync(path, "r");
    try {
      expect(cachedBytes(fd, 0, 3_000_000)).toBe(3_000_000);
      expect(cachedBytes(fd, 100_000, 5000)).toBe(5000);
      expect(cachedBytes(fd, 0, 0)).toBe(0);
      expect(() => cachedBytes(fd, -1, 10)).toThrow(/descriptor and a byte range/);
      expect(cachedBytes(1 << 20, 0, 4096)).toBe(-1); // not an open descriptor
    } finally {
      closeSync(fd);
    }
  });
});
