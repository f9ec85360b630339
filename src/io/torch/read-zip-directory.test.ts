import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GyozaError } from "../../errors.js";
import { AtomicFileWriter } from "../atomic-file.js";
import { BufferByteSource, type ByteSource } from "../byte-source.js";
import { parseTorchFile } from "./parse-torch-file.js";
import {
  entryDataOffset,
  entryDataOffsets,
  LOCAL_HEADER_WINDOW_BYTES,
  readZipDirectory,
} from "./read-zip-directory.js";
import { TorchZipWriter } from "./torch-zip-writer.js";
import { writeTorchCheckpoint } from "./write-torch-checkpoint.js";

let dir: string;
let valid: Uint8Array;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-zip-"));
  const bytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  await writeTorchCheckpoint(join(dir, "valid.ckpt"), [
    { key: "w", dtype: "F32", shape: [2], read: async () => bytes },
  ]);
  valid = new Uint8Array(await readFile(join(dir, "valid.ckpt")));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Offsets of the structures at the end of a zip our writer produced. */
function layout(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const eocd = bytes.byteLength - 22;
  const locator = eocd - 20;
  const zip64 = locator - 56;
  return { view, eocd, locator, zip64, directory: Number(view.getBigUint64(zip64 + 48, true)) };
}

async function rejection(bytes: Uint8Array): Promise<GyozaError> {
  const error = await parseTorchFile(new BufferByteSource(bytes, "hostile.ckpt")).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GyozaError);
  return error as GyozaError;
}

/** An empty dict, pickled with protocol 2. */
const EMPTY_DICT_PICKLE = Uint8Array.from([0x80, 0x02, 0x7d, 0x2e]);

async function zipWith(records: [string, string | Uint8Array][]): Promise<Uint8Array> {
  const path = join(dir, `built-${records.length}-${Math.random()}.zip`);
  const out = await AtomicFileWriter.create(path);
  const zip = new TorchZipWriter(out);
  for (const [name, text] of records) {
    const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
    await zip.addEntry(name, data.byteLength, [data]);
  }
  await zip.finish();
  await out.commit();
  return new Uint8Array(await readFile(path));
}

describe("readZipDirectory", () => {
  it("reads the zip64 records torch writes and 64-byte aligned data", async () => {
    const entries = await readZipDirectory(new BufferByteSource(valid));
    expect(entries.map((e) => e.name)).toEqual([
      "archive/data.pkl",
      "archive/byteorder",
      "archive/data/0",
      "archive/version",
    ]);
    const file = await parseTorchFile(new BufferByteSource(valid));
    expect(file.storages.get("0")!.dataOffset % 64).toBe(0);
  });

  it("rejects a file without an end-of-central-directory record", async () => {
    expect((await rejection(valid.subarray(0, valid.length - 30))).message).toMatch(
      /end-of-central-directory/,
    );
  });

  it("rejects a central directory that runs past its end record", async () => {
    const bytes = valid.slice();
    const { view, zip64 } = layout(bytes);
    view.setBigUint64(zip64 + 40, 1n << 20n, true);
    expect((await rejection(bytes)).message).toMatch(/central directory .* runs past its end record/);
  });

  it("rejects a zip64 locator that points outside the file", async () => {
    const bytes = valid.slice();
    const { view, locator } = layout(bytes);
    view.setBigUint64(locator + 8, 1n << 40n, true);
    expect((await rejection(bytes)).message).toMatch(/zip64 locator points outside/);
  });

  it("rejects an entry count the directory cannot hold", async () => {
    const bytes = valid.slice();
    const { view, zip64 } = layout(bytes);
    view.setBigUint64(zip64 + 32, 100_000n, true);
    expect((await rejection(bytes)).message).toMatch(/100000 entries cannot fit/);
  });

  it("rejects a compressed entry", async () => {
    const bytes = valid.slice();
    const { view, directory } = layout(bytes);
    view.setUint16(directory + 10, 8, true);
    expect((await rejection(bytes)).message).toMatch(/is compressed \(method 8\)/);
  });

  it("rejects an entry whose data runs past the end of the file", async () => {
    const bytes = valid.slice();
    const { view, directory } = layout(bytes);
    view.setUint32(directory + 20, 0x7fff_0000, true);
    view.setUint32(directory + 24, 0x7fff_0000, true);
    expect((await rejection(bytes)).message).toMatch(/runs past the end of the file/);
  });

  it("rejects a local header offset that points into the central directory", async () => {
    const bytes = valid.slice();
    const { view, directory } = layout(bytes);
    view.setUint32(directory + 42, directory + 4, true);
    expect((await rejection(bytes)).message).toMatch(/local header past the central directory/);
  });

  it("rejects an archive without exactly one <dir>/data.pkl", async () => {
    expect((await rejection(await zipWith([["a/version", "3\n"]]))).message).toMatch(/holds 0/);
    const two = await zipWith([
      ["a/data.pkl", "x"],
      ["b/data.pkl", "y"],
    ]);
    expect((await rejection(two)).message).toMatch(/holds 2/);
  });

  it("rejects a checkpoint written big-endian", async () => {
    const bytes = await zipWith([
      ["archive/data.pkl", EMPTY_DICT_PICKLE],
      ["archive/byteorder", "big"],
    ]);
    expect((await rejection(bytes)).message).toMatch(/byte order "big"/);
  });

  it("ignores records it does not know, as torch 2 writes them", async () => {
    const bytes = await zipWith([
      ["archive/data.pkl", EMPTY_DICT_PICKLE],
      ["archive/byteorder", "little"],
      ["archive/.data/serialization_id", "1234567890"],
      ["archive/version", "3\n"],
    ]);
    const file = await parseTorchFile(new BufferByteSource(bytes));
    expect(file.archivePrefix).toBe("archive");
    expect(file.storages.size).toBe(0);
  });

  it("locates every storage's data reading neighbouring local headers together", async () => {
    // 40 small storages, one larger than the window, 40 more (in torch's string order the large
    // storage "40" sits between "4" and "41"): two groups of headers
    const small = (i: number) => ({
      key: `small.${i}`,
      dtype: "F32" as const,
      shape: [16],
      read: async () => new Uint8Array(64).fill(i),
    });
    const large = new Uint8Array(LOCAL_HEADER_WINDOW_BYTES * 2);
    const path = join(dir, "grouped.ckpt");
    await writeTorchCheckpoint(
      path,
      [
        ...Array.from({ length: 40 }, (_, i) => small(i)),
        { key: "large", dtype: "U8", shape: [large.byteLength], read: async () => large },
        ...Array.from({ length: 40 }, (_, i) => small(40 + i)),
      ],
      { dataOrder: "torch" },
    );
    const bytes = new Uint8Array(await readFile(path));
    let reads = 0;
    const inner = new BufferByteSource(bytes);
    const counting: ByteSource = {
      name: inner.name,
      size: inner.size,
      read: (offset, length) => {
        reads++;
        return inner.read(offset, length);
      },
      readInto: (target, offset) => inner.readInto(target, offset),
      close: async () => {},
    };
    const entries = (await readZipDirectory(inner)).filter((e) => e.name.includes("/data/"));
    const grouped = await entryDataOffsets(counting, entries);
    expect(reads).toBe(2);
    expect(grouped).toEqual(await Promise.all(entries.map((e) => entryDataOffset(inner, e))));
  });

  it("rejects a wrong local header signature among headers read together", async () => {
    const bytes = await zipWith([
      ["archive/data.pkl", EMPTY_DICT_PICKLE],
      ["archive/data/0", "abcd"],
      ["archive/data/1", "efgh"],
    ]);
    const entries = await readZipDirectory(new BufferByteSource(bytes));
    const second = entries.find((e) => e.name === "archive/data/1")!;
    bytes[second.headerOffset] = 0;
    const source = new BufferByteSource(bytes, "hostile.ckpt");
    await expect(entryDataOffsets(source, entries)).rejects.toThrow(/local header signature is wrong/);
  });
});
