import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { blake3 as nobleBlake3 } from "@noble/hashes/blake3.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { BufferByteSource } from "../io/byte-source.js";
import type { ProgressEvent } from "../progress.js";
import {
  hashBytes,
  hashFile,
  hashFiles,
  hashThreadCount,
  IN_THREAD_MAX_BYTES,
  PROGRESS_MIN_BYTES,
} from "./hash-file.js";
import { READ_BYTES, runHashPass } from "./hash-pass.js";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex").toUpperCase();
const blake3 = (bytes: Uint8Array) => Buffer.from(nobleBlake3(bytes)).toString("hex").toUpperCase();

/** Table-driven IEEE CRC-32 written out here, sharing no code with the hasher. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Every hash computed the slow, direct way over the right slices of `bytes` (DOMAIN.md §5). */
function expectedHashes(bytes: Uint8Array, autoV3Bytes: Uint8Array) {
  const full = sha256(bytes);
  const window = sha256(bytes.subarray(0x100000, 0x110000));
  const crc = crc32(bytes);
  const crcBytes = Buffer.alloc(4);
  crcBytes.writeUInt32LE(crc);
  const autoV3Full = sha256(autoV3Bytes);
  return {
    sha256: full,
    autoV1: bytes.byteLength < 0x200000 ? null : window.slice(0, 8),
    autoV2: full.slice(0, 10),
    autoV3: autoV3Full.slice(0, 12),
    autoV3Full,
    blake3: blake3(bytes),
    crc32: crc.toString(16).padStart(8, "0").toUpperCase(),
    crc32Civitai: crcBytes.toString("hex").toUpperCase(),
    a1111: { modelHash: window.slice(0, 8).toLowerCase(), shorthash: full.slice(0, 10).toLowerCase() },
  };
}

/** A safetensors-shaped file: u64 LE header length `declared`, then `body`. */
function withDeclaredHeader(declared: bigint, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(8 + body.byteLength);
  new DataView(bytes.buffer).setBigUint64(0, declared, true);
  bytes.set(body, 8);
  return bytes;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-hash-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileWith(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

describe("hashBytes", () => {
  it("gives the known hashes of the empty file", async () => {
    const hashes = await hashBytes(new Uint8Array());
    expect(hashes.sha256).toBe("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
    expect(hashes.blake3).toBe("AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262");
    expect(hashes.autoV3).toBe("E3B0C44298FC");
    expect(hashes.autoV1).toBeNull();
    expect(hashes.a1111).toEqual({ modelHash: "e3b0c442", shorthash: "e3b0c44298" });
    expect(hashes.crc32).toBe("00000000");
    expect(hashes.crc32Civitai).toBe("00000000");
  });

  it('gives CRC32 of "hello world" in both byte orders', async () => {
    const hashes = await hashBytes(new TextEncoder().encode("hello world"));
    expect(hashes.crc32).toBe("0D4A1185");
    expect(hashes.crc32Civitai).toBe("85114A0D");
    expect(hashes.sha256).toBe("B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9");
  });

  it("matches the BLAKE3 spec vectors (input bytes i mod 251)", async () => {
    const input = (length: number) => Uint8Array.from({ length }, (_, i) => i % 251);
    const vectors: [number, string][] = [
      [1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"],
      [1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"],
    ];
    for (const [length, expected] of vectors) {
      expect((await hashBytes(input(length), { algorithms: ["blake3"] })).blake3).toBe(
        expected.toUpperCase(),
      );
    }
  });

  it("gives no Civitai AutoV1 under 2 MiB but still the A1111 legacy hash of what the window holds", async () => {
    const bytes = randomBytes(0x100000 + 100);
    const hashes = await hashBytes(bytes);
    expect(hashes.autoV1).toBeNull();
    expect(hashes.a1111?.modelHash).toBe(sha256(bytes.subarray(0x100000)).slice(0, 8).toLowerCase());
    expect(hashes).toEqual(expectedHashes(bytes, bytes.subarray(8)));
  });

  it("gives AutoV1 from exactly 2 MiB on, and none one byte short of it", async () => {
    const bytes = randomBytes(0x200000);
    expect(await hashBytes(bytes)).toEqual(expectedHashes(bytes, bytes.subarray(8)));
    expect((await hashBytes(bytes.subarray(0, 0x200000 - 1))).autoV1).toBeNull();
  });

  it("hashes the tensor data after a small safetensors header for AutoV3", async () => {
    const bytes = withDeclaredHeader(16n, randomBytes(1000));
    expect(await hashBytes(bytes)).toEqual(expectedHashes(bytes, bytes.subarray(24)));
  });

  it("hashes everything after the first 8 bytes when the declared header is 16 MiB or more", async () => {
    const bytes = withDeclaredHeader(16777216n, randomBytes(1000));
    expect(await hashBytes(bytes)).toEqual(expectedHashes(bytes, bytes.subarray(8)));
  });

  it("hashes no bytes for AutoV3 when a header just under 16 MiB runs past the end of the file", async () => {
    const bytes = withDeclaredHeader(16777215n, randomBytes(1000));
    expect((await hashBytes(bytes)).autoV3Full).toBe(sha256(new Uint8Array()));
  });

  it("treats a zip (.ckpt) signature as a huge header and hashes file[8:] for AutoV3", async () => {
    const bytes = new Uint8Array(4096);
    bytes.set([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08, 0x08]);
    bytes.set(randomBytes(4000), 96);
    expect(await hashBytes(bytes)).toEqual(expectedHashes(bytes, bytes.subarray(8)));
  });

  it("hashes no bytes for AutoV3 of a file shorter than 8 bytes", async () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5]);
    expect(await hashBytes(bytes)).toEqual(expectedHashes(bytes, new Uint8Array()));
  });

  it("gives only the fields of the algorithms asked for", async () => {
    const hashes = await hashBytes(new TextEncoder().encode("hello world"), {
      algorithms: ["crc32", "autov2"],
    });
    expect(hashes).toEqual({
      autoV2: "B94D27B993",
      crc32: "0D4A1185",
      crc32Civitai: "85114A0D",
      a1111: { shorthash: "b94d27b993" },
    });
  });
});

describe("hashThreadCount", () => {
  const big = 4 * IN_THREAD_MAX_BYTES;
  it("hashes a small file on the calling thread and a big one on a thread per core, at most one per stream", () => {
    expect(hashThreadCount(IN_THREAD_MAX_BYTES - 1, 2)).toBe(0);
    expect(hashThreadCount(big, 2)).toBe(Math.min(availableParallelism(), 2));
    expect(hashThreadCount(big, 1)).toBe(1);
  });

  it("keeps to maxThreads and lets an explicit thread count win", () => {
    expect(hashThreadCount(big, 4, { maxThreads: 1 })).toBe(1);
    expect(hashThreadCount(IN_THREAD_MAX_BYTES - 1, 4, { maxThreads: 1 })).toBe(0);
    expect(hashThreadCount(big, 4, { threads: 3, maxThreads: 1 })).toBe(3);
  });
});

describe("hashFile", () => {
  it("gives the same hashes on this thread and on 1, 2 or 4 worker threads, over many reads", async () => {
    const bytes = withDeclaredHeader(4096n, randomBytes(9 * READ_BYTES + 12345));
    const path = await fileWith("big.safetensors", bytes);
    const expected = expectedHashes(bytes, bytes.subarray(8 + 4096));
    for (const threads of [0, 1, 2, 4]) {
      expect(await hashFile(path, { cacheDir: false, threads })).toEqual(expected);
    }
  });

  it("starts AutoV3 in a later read when the header is longer than one read", async () => {
    const declared = BigInt(READ_BYTES + 100);
    const bytes = withDeclaredHeader(declared, randomBytes(2 * READ_BYTES));
    const path = await fileWith("long-header.safetensors", bytes);
    const expected = expectedHashes(bytes, bytes.subarray(8 + Number(declared)));
    expect(await hashFile(path, { cacheDir: false, threads: 2 })).toEqual(expected);
    expect(await hashFile(path, { cacheDir: false, threads: 0 })).toEqual(expected);
  });

  it("hashes an empty file on worker threads", async () => {
    const path = await fileWith("empty.bin", new Uint8Array());
    expect(await hashFile(path, { cacheDir: false, threads: 2 })).toEqual(
      expectedHashes(new Uint8Array(), new Uint8Array()),
    );
  });

  it("fails with an io error when the file shrinks under the worker threads", async () => {
    const path = await fileWith("shrinking.bin", randomBytes(2 * READ_BYTES));
    const claimed = new BufferByteSource(new Uint8Array(3 * READ_BYTES)); // the size seen before it shrank
    const error = await runHashPass(claimed, {
      streams: ["sha256", "crc32"],
      autoV3Start: 8,
      threads: 2,
      path,
    }).catch((caught: unknown) => caught);
    expect(isGyozaError(error, "io")).toBe(true);
    expect((error as Error).message).toBe("file shrank while being read");
  });

  it("reports a missing file as an io error naming it", async () => {
    const missing = join(dir, "missing.safetensors");
    const error = await hashFile(missing, { cacheDir: false }).catch((caught: unknown) => caught);
    expect(isGyozaError(error, "io")).toBe(true);
    expect((error as Error & { file: string }).file).toBe(missing);
  });

  it("rejects a directory", async () => {
    const error = await hashFile(dir, { cacheDir: false }).catch((caught: unknown) => caught);
    expect(isGyozaError(error, "io")).toBe(true);
  });

  it("hashes several files concurrently, keeps their order and still finishes the others when one fails", async () => {
    const contents = [randomBytes(10), randomBytes(3 * 1024 * 1024), randomBytes(0)];
    const paths = await Promise.all(contents.map((bytes, i) => fileWith(`many-${i}.bin`, bytes)));
    const results = await hashFiles(paths, { cacheDir: false, concurrency: 2, algorithms: ["sha256"] });
    expect(results.map((result) => result.hashes.sha256)).toEqual(contents.map(sha256));
    expect(results.map((result) => result.size)).toEqual(contents.map((bytes) => bytes.byteLength));
    await expect(hashFiles([paths[0]!, join(dir, "nope")], { cacheDir: false })).rejects.toThrow(
      /no such file/,
    );
  });

  it("reports progress for jobs over the threshold, advancing every byte once, and none for small ones", async () => {
    const path = join(dir, "sparse.bin");
    await writeFile(path, new Uint8Array());
    await truncate(path, PROGRESS_MIN_BYTES + 5); // sparse: costs no disk
    const events: ProgressEvent[] = [];
    await hashFiles([path], {
      cacheDir: false,
      algorithms: ["crc32"],
      onProgress: (event) => events.push(event),
    });
    expect(events[0]).toEqual({
      type: "start",
      task: "hashing sparse.bin",
      totalBytes: PROGRESS_MIN_BYTES + 5,
    });
    expect(events.at(-1)).toEqual({ type: "finish", task: "hashing sparse.bin" });
    const advanced = events.reduce((sum, event) => sum + (event.type === "advance" ? event.bytes : 0), 0);
    expect(advanced).toBe(PROGRESS_MIN_BYTES + 5);

    const quiet: ProgressEvent[] = [];
    await hashFiles([await fileWith("small.bin", randomBytes(100))], {
      cacheDir: false,
      onProgress: (event) => quiet.push(event),
    });
    expect(quiet).toEqual([]);
  });
});
