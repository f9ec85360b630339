import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AtomicFileWriter } from "./atomic-file.js";
import { ChunkSha256 } from "./chunk-sha256.js";
import { DIRECT_ALIGN, DIRECT_BLOCK_BYTES } from "./direct-appender.js";

/** Deterministic bytes (xorshift), so a misplaced block cannot match by accident. */
function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

const directories: string[] = [];
beforeAll(async () => {
  directories.push(await mkdtemp(join(tmpdir(), "gyoza-direct-")));
  // tmpfs, where older kernels refuse O_DIRECT and the ordinary descriptor takes over
  if (existsSync("/dev/shm")) directories.push(await mkdtemp("/dev/shm/gyoza-direct-"));
});
afterAll(async () => {
  for (const dir of directories) await rm(dir, { recursive: true, force: true });
});

describe("direct appends (O_DIRECT, bypassing the page cache)", () => {
  it("write exactly the appended bytes, whatever the chunk sizes, with the last block cut to length", async () => {
    for (const dir of directories) {
      const expected = pattern(2 * DIRECT_BLOCK_BYTES + DIRECT_ALIGN * 3 + 1234, 7);
      const sizes = [1, 4095, DIRECT_BLOCK_BYTES, 77_777, DIRECT_ALIGN, DIRECT_BLOCK_BYTES - 3];
      const path = join(dir, "out.bin");
      const writer = await AtomicFileWriter.create(path, { direct: {} });
      let at = 0;
      for (let i = 0; at < expected.byteLength; i++) {
        const n = Math.min(sizes[i % sizes.length]!, expected.byteLength - at);
        if (i % 2) await writer.write(expected.subarray(at, at + n));
        else await writer.writev([expected.subarray(at, at + 1), expected.subarray(at + 1, at + n)]);
        at += n;
      }
      expect(writer.bytesWritten).toBe(expected.byteLength);
      // a header patch after the data, as the safetensors writer does for hashes
      const patch = pattern(64, 9);
      patch.copy(expected, 100);
      await writer.writeAt(patch, 100);
      await writer.commit();
      const written = await readFile(path);
      expect(written.byteLength, dir).toBe(expected.byteLength);
      expect(written.equals(expected), dir).toBe(true);
      expect((await readdir(dir)).filter((name) => name.endsWith(".gyoza-partial"))).toEqual([]);
    }
  });

  it("write a file shorter than one alignment unit, and an empty one", async () => {
    for (const dir of directories) {
      for (const length of [0, 1, 100]) {
        const expected = pattern(length, length + 1);
        const path = join(dir, `small-${length}.bin`);
        const writer = await AtomicFileWriter.create(path, { direct: {} });
        await writer.write(expected);
        await writer.commit();
        expect((await readFile(path)).equals(expected), `${dir}, ${length} bytes`).toBe(true);
      }
    }
  });

  it("hash exactly the bytes from the given offset on, across blocks, as sha256 of that part of the file", async () => {
    const dir = directories[0]!;
    const bytes = pattern(DIRECT_BLOCK_BYTES * 2 + 999, 11);
    for (const from of [0, 8 + 4093, DIRECT_BLOCK_BYTES + 1]) {
      const hasher = new ChunkSha256();
      const path = join(dir, `hashed-${from}.bin`);
      const writer = await AtomicFileWriter.create(path, { direct: {}, hash: { hasher, from } });
      for (let at = 0; at < bytes.byteLength; at += 1_000_003)
        await writer.write(bytes.subarray(at, at + 1_000_003));
      await writer.endAppends();
      const digest = await hasher.digest();
      await writer.commit();
      expect(digest, `from ${from}`).toBe(createHash("sha256").update(bytes.subarray(from)).digest("hex"));
      expect((await readFile(path)).equals(bytes)).toBe(true);
    }
  });

  it("go on through the ordinary descriptor, bytes unchanged, when the kernel refuses an O_DIRECT write", async () => {
    const dir = directories[0]!;
    // blocks 8 bytes off a page boundary: a file system that takes O_DIRECT refuses writes from them
    // (EINVAL) at the first block, after the descriptor opened fine
    const backing = Buffer.from(new SharedArrayBuffer(8 * DIRECT_BLOCK_BYTES));
    let next = 8;
    const misaligned = {
      allocate: (bytes: number) => {
        const block = backing.subarray(next, next + bytes);
        next += bytes;
        return block;
      },
    };
    const expected = pattern(3 * DIRECT_BLOCK_BYTES + 4321, 5);
    const path = join(dir, "refused.bin");
    const writer = await AtomicFileWriter.create(path, { direct: misaligned });
    const openedDirect = writer.writingDirect;
    for (let at = 0; at < expected.byteLength; at += 1_048_573)
      await writer.write(expected.subarray(at, at + 1_048_573));
    await writer.commit();
    expect((await readFile(path)).equals(expected)).toBe(true);
    // where the descriptor opened with O_DIRECT, the refusal switched the rest to ordinary writes
    expect(writer.writingDirect).toBe(false);
    if (!openedDirect) process.stdout.write("this file system does not open files with O_DIRECT\n");
  });

  it("leave nothing behind when aborted with blocks still being written", async () => {
    for (const dir of directories) {
      const path = join(dir, "aborted.bin");
      const writer = await AtomicFileWriter.create(path, { direct: {} });
      await writer.write(pattern(3 * DIRECT_BLOCK_BYTES + 5, 3));
      await writer.abort();
      expect(await readdir(dir)).not.toContain("aborted.bin");
      expect((await readdir(dir)).filter((name) => name.includes("aborted.bin"))).toEqual([]);
    }
  });
});
