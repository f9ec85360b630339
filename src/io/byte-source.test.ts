import { truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { FileByteSource, READS_IN_FLIGHT } from "./byte-source.js";

let dir = "";
useTempDirWithHashCache("gyoza-byte-source-", (path) => {
  dir = path;
});

describe("FileByteSource", () => {
  it("serves many more concurrent reads than it runs at once, each with its own bytes, across files", async () => {
    const files = await Promise.all(
      [0, 1, 2].map(async (index) => {
        const bytes = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7 + index * 13) & 0xff);
        const path = join(dir, `f${index}.bin`);
        await writeFile(path, bytes);
        return { bytes, source: await FileByteSource.open(path) };
      }),
    );
    try {
      const reads = Array.from({ length: 20 * READS_IN_FLIGHT }, (_, n) => {
        const file = files[n % files.length]!;
        const offset = (n * 40_503) % ((1 << 20) - 70_000);
        return { file, offset, done: file.source.readInto(new Uint8Array(70_000), offset) };
      });
      for (const { file, offset, done } of reads)
        expect(Buffer.from(await done).equals(file.bytes.subarray(offset, offset + 70_000))).toBe(true);
      // reads that fail inside their turn (the file shrank) give it back: later reads still run
      await truncate(join(dir, "f2.bin"), 1000);
      for (let n = 0; n <= READS_IN_FLIGHT; n++)
        await expect(files[2]!.source.readInto(new Uint8Array(10), 5000)).rejects.toThrow(/shrank/);
      expect([...(await files[1]!.source.read(0, 4))]).toEqual([...files[1]!.bytes.subarray(0, 4)]);
    } finally {
      await Promise.all(files.map((file) => file.source.close()));
    }
  });
});
