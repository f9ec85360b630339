import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GyozaError } from "../../errors.js";
import { BufferByteSource, type ByteSource } from "../byte-source.js";
import { readTensorBytes } from "../read-tensor.js";
import { CheckedEntrySource } from "./checked-entry-source.js";
import { openTorchCheckpoint } from "./open-torch-checkpoint.js";
import { parseTorchFile } from "./parse-torch-file.js";
import {
  entryDataOffset,
  entryDataOffsets,
  locateEntryData,
  readZipDirectory,
  torchDataOffset,
  type ZipEntry,
} from "./read-zip-directory.js";
import { writeTorchCheckpoint } from "./write-torch-checkpoint.js";

const TENSORS = 9;
/** Elements of tensor i: ~100 KB each, so no two local headers are read together when every one is read. */
const lengthOf = (i: number) => 25_000 + i;
const filled = (i: number) => new Uint8Array(4 * lengthOf(i)).fill(i + 1);

let dir: string;
let written: Uint8Array;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-checked-"));
  const path = join(dir, "nine.ckpt");
  await writeTorchCheckpoint(
    path,
    Array.from({ length: TENSORS }, (_, i) => ({
      key: `t${i}`,
      dtype: "F32" as const,
      shape: [lengthOf(i)],
      read: async () => filled(i),
    })),
  );
  written = new Uint8Array(await readFile(path));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Compares as bytes (a deep equality of 100 KB arrays costs vitest ~0.2 s each). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(Buffer.compare(actual, expected)).toBe(0);
}

/** A source that counts the reads that reach it. */
function counting(bytes: Uint8Array, name = "model.ckpt"): ByteSource & { reads: number } {
  const inner = new BufferByteSource(bytes, name);
  const source = {
    name,
    size: inner.size,
    reads: 0,
    read: (offset: number, length: number) => {
      source.reads++;
      return inner.read(offset, length);
    },
    readInto: (target: Uint8Array, offset: number) => {
      source.reads++;
      return inner.readInto(target, offset);
    },
    close: async () => {},
  };
  return source;
}

/** The storage entries of a zip, by local header offset. */
async function storageEntries(bytes: Uint8Array) {
  const entries = await readZipDirectory(new BufferByteSource(bytes));
  return entries.filter((e) => e.name.includes("/data/")).sort((a, b) => a.headerOffset - b.headerOffset);
}

/**
 * A stored entry's local header (30 bytes) or central directory record (46 bytes, its CRC, sizes and
 * name length 2 bytes further in), name included; a central record's header offset is left at 0.
 */
function storedRecord(kind: "local" | "central", entry: ZipEntry, name: Uint8Array): Uint8Array {
  const [signature, fixed, shift] = kind === "local" ? [0x04034b50, 30, 0] : [0x02014b50, 46, 2];
  const record = new Uint8Array(fixed + name.byteLength);
  const view = new DataView(record.buffer);
  view.setUint32(0, signature, true);
  view.setUint32(14 + shift, entry.crc32, true);
  view.setUint32(18 + shift, entry.size, true);
  view.setUint32(22 + shift, entry.size, true);
  view.setUint16(26 + shift, name.byteLength, true);
  record.set(name, fixed);
  return record;
}

/**
 * The same records re-stored as a general zip tool stores them: local header, name, data, no padding,
 * no data descriptor (what `zip -0` makes of a checkpoint someone unpacked).
 */
async function repackedWithoutPadding(bytes: Uint8Array): Promise<Uint8Array> {
  const source = new BufferByteSource(bytes);
  const entries = await readZipDirectory(source);
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = new TextEncoder().encode(entry.name);
    const data = (await source.read(await entryDataOffset(source, entry), entry.size)).slice();
    const local = storedRecord("local", entry, name);
    const record = storedRecord("central", entry, name);
    new DataView(record.buffer).setUint32(42, offset, true);
    parts.push(local, data);
    central.push(record);
    offset += local.byteLength + data.byteLength;
  }
  const directorySize = central.reduce((sum, record) => sum + record.byteLength, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, directorySize, true);
  ev.setUint32(16, offset, true);
  return new Uint8Array(Buffer.concat([...parts, ...central, end]));
}

describe("data offsets predicted from torch's layout", () => {
  it("match the local headers of every storage torch's layout wrote", async () => {
    const source = new BufferByteSource(written);
    for (const entry of await storageEntries(written)) {
      expect(torchDataOffset(entry)).toBe(await entryDataOffset(source, entry));
    }
  });

  it("locate a torch-laid-out checkpoint's storages reading three local headers, not one per storage", async () => {
    const entries = await storageEntries(written);
    const eager = counting(written);
    const everyHeader = await entryDataOffsets(eager, entries);
    const predicted = counting(written);
    const located = await locateEntryData(predicted, entries);
    expect(located).toEqual({ offsets: everyHeader, predicted: true });
    expect([eager.reads, predicted.reads]).toEqual([TENSORS, 3]);
    const file = await parseTorchFile(counting(written));
    expect(file.dataSource).toBeInstanceOf(CheckedEntrySource);
  });

  it("check each storage's local header once, on its first read, and return its exact bytes", async () => {
    const source = counting(written);
    const checkpoint = await openTorchCheckpoint(source, "model.ckpt");
    const opened = source.reads;
    for (let i = 0; i < TENSORS; i++) {
      expectBytes(await readTensorBytes(checkpoint.tensors.get(`t${i}`)!), filled(i));
    }
    const firstPass = source.reads - opened;
    for (let i = 0; i < TENSORS; i++) await readTensorBytes(checkpoint.tensors.get(`t${i}`)!);
    // a data read and a header read each the first time, the data read alone after that
    expect(firstPass).toBe(2 * TENSORS);
    expect(source.reads - opened - firstPass).toBe(TENSORS);
  });

  it("are not used for a checkpoint repacked by another zip tool, whose every header is read", async () => {
    const repacked = await repackedWithoutPadding(written);
    const checkpoint = await openTorchCheckpoint(new BufferByteSource(repacked), "repacked.ckpt");
    expect(checkpoint.tensors.get("t0")!.source).toBeInstanceOf(BufferByteSource);
    for (let i = 0; i < TENSORS; i++) {
      expectBytes(await readTensorBytes(checkpoint.tensors.get(`t${i}`)!), filled(i));
    }
  });
});

/** Makes `entry`'s local header declare an extra field `by` bytes longer: its data then starts `by` bytes later. */
function lengthenExtraField(bytes: Uint8Array, entry: ZipEntry, by: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint16(entry.headerOffset + 28, view.getUint16(entry.headerOffset + 28, true) + by, true);
}

describe("hostile layouts", () => {
  it("rejects a tensor whose local header puts its data away from torch's layout when its bytes are read", async () => {
    const bytes = written.slice();
    const entries = await storageEntries(bytes);
    // not one of the three sampled headers (first, middle, last): found only when read
    const victim = entries[1]!;
    lengthenExtraField(bytes, victim, 8);
    const checkpoint = await openTorchCheckpoint(new BufferByteSource(bytes, "hostile.ckpt"), "hostile.ckpt");
    const key = `t${victim.name.split("/").pop()}`;
    const error = await readTensorBytes(checkpoint.tensors.get(key)!).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GyozaError);
    expect((error as GyozaError).message).toMatch(
      /local header of .*\/data\/\d+ puts its data at byte \d+, not at/,
    );
    // the others still read, and the rejection repeats for the mislocated one
    const other = entries[2]!.name.split("/").pop();
    expectBytes(await readTensorBytes(checkpoint.tensors.get(`t${other}`)!), filled(Number(other)));
    await expect(readTensorBytes(checkpoint.tensors.get(key)!)).rejects.toThrow(/local header of/);
  });

  it("reads every local header when a sampled one disagrees with torch's layout", async () => {
    const bytes = written.slice();
    const entries = await storageEntries(bytes);
    const first = entries[0]!;
    lengthenExtraField(bytes, first, 8);
    const file = await parseTorchFile(new BufferByteSource(bytes, "hostile.ckpt"));
    expect(file.dataSource).toBeUndefined();
    // located by its own header (8 bytes on), as any zip reader would
    const key = first.name.split("/").pop()!;
    expect(file.storages.get(key)!.dataOffset).toBe(torchDataOffset(first) + 8);
  });
});
