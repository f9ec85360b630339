import { describe, expect, it } from "vitest";
import { GyozaError } from "../../errors.js";
import { BufferByteSource } from "../byte-source.js";
import { PickleWriter } from "../pickle/index.js";
import { readTensorBytes } from "../read-tensor.js";
import { torchCheckpointFromFile } from "./open-torch-checkpoint.js";
import { parseTorchFile } from "./parse-torch-file.js";

interface LegacyOptions {
  magic?: bigint;
  littleEndian?: boolean;
  /** Storage keys the main pickle references (each an F32 tensor of `numel` elements). */
  referenced?: string[];
  /** Storage keys listed by the fifth pickle. */
  listed?: string[];
  /** Element count written before each record (defaults to the declared numel). */
  counts?: bigint[];
  numel?: number;
}

/** A legacy torch.save file built in code: five pickles, then `<int64 count><bytes>` per listed key. */
function legacyFile(options: LegacyOptions = {}): Uint8Array {
  const numel = options.numel ?? 4;
  const referenced = options.referenced ?? ["140"];
  const listed = options.listed ?? referenced;
  const parts: Uint8Array[] = [
    new PickleWriter()
      .proto(2)
      .int(options.magic ?? 0x1950a86a20f9469cfc6cn)
      .stop()
      .bytes(),
    new PickleWriter().proto(2).int(1001).stop().bytes(),
    new PickleWriter()
      .proto(2)
      .emptyDict()
      .string("little_endian")
      .bool(options.littleEndian ?? true)
      .setItem()
      .stop()
      .bytes(),
  ];
  const main = new PickleWriter().proto(2).emptyDict().mark();
  for (const key of referenced) {
    main.string(`t${key}`).global("torch._utils", "_rebuild_tensor_v2").mark();
    main
      .mark()
      .string("storage")
      .global("torch", "FloatStorage")
      .string(key)
      .string("cpu")
      .int(numel)
      .none()
      .tuple()
      .binPersId();
    main
      .int(0)
      .int(numel)
      .tuple1()
      .int(1)
      .tuple1()
      .bool(false)
      .global("collections", "OrderedDict")
      .emptyTuple()
      .reduce();
    main.tuple().reduce();
  }
  parts.push(main.setItems().stop().bytes());
  const keys = new PickleWriter().proto(2).emptyList().mark();
  for (const key of listed) keys.string(key);
  parts.push(keys.appends().stop().bytes());
  listed.forEach((_, index) => {
    const count = new Uint8Array(8);
    new DataView(count.buffer).setBigInt64(0, options.counts?.[index] ?? BigInt(numel), true);
    parts.push(
      count,
      Uint8Array.from({ length: numel * 4 }, (_, i) => index * 16 + i),
    );
  });
  const file = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    file.set(part, at);
    at += part.byteLength;
  }
  return file;
}

async function rejection(bytes: Uint8Array): Promise<GyozaError> {
  const error = await parseTorchFile(new BufferByteSource(bytes, "legacy.ckpt")).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GyozaError);
  return error as GyozaError;
}

describe("legacy torch files", () => {
  it("reads storages that follow the five pickles in listed order", async () => {
    const source = new BufferByteSource(legacyFile({ referenced: ["20", "10"], listed: ["10", "20"] }));
    const file = await parseTorchFile(source);
    expect(file.format).toBe("legacy");
    const checkpoint = torchCheckpointFromFile(file, source, "legacy.ckpt");
    expect(checkpoint.format).toBe("ckpt-legacy");
    expect([...(await readTensorBytes(checkpoint.tensors.get("t10")!))]).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    ]);
    expect((await readTensorBytes(checkpoint.tensors.get("t20")!))[0]).toBe(16);
  });

  it("rejects a file whose first pickle is not torch's magic number", async () => {
    expect((await rejection(legacyFile({ magic: 42n }))).message).toMatch(/not a PyTorch checkpoint/);
  });

  it("rejects a big-endian legacy file", async () => {
    expect((await rejection(legacyFile({ littleEndian: false }))).message).toMatch(/not little-endian/);
  });

  it("rejects a listed storage the pickle never references", async () => {
    const error = await rejection(legacyFile({ referenced: ["1"], listed: ["1", "2"] }));
    expect(error.message).toMatch(/storage record 2 is not referenced/);
  });

  it("rejects a referenced storage that has no record", async () => {
    const error = await rejection(legacyFile({ referenced: ["1", "2"], listed: ["1"] }));
    expect(error.message).toMatch(/storage 2 is referenced by the pickle but has no record/);
  });

  it("rejects a record count that differs from the persistent id", async () => {
    const error = await rejection(legacyFile({ counts: [3n] }));
    expect(error.message).toMatch(
      /declares 4 elements \(16 bytes\) but its record at byte \d+ holds 12 bytes/,
    );
  });

  it("rejects a negative record count", async () => {
    expect((await rejection(legacyFile({ counts: [-1n] }))).message).toMatch(/claims -1 F32 elements/);
  });

  it("rejects a file cut inside the storage records", async () => {
    const bytes = legacyFile();
    expect((await rejection(bytes.subarray(0, bytes.length - 3))).message).toMatch(/only 13 bytes remain/);
  });
});
