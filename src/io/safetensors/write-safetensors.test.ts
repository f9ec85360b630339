import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileByteSource } from "../byte-source.js";
import { readTensorBytes } from "../read-tensor.js";
import { readSafetensorsHeader } from "./read-safetensors.js";
import { encodeSafetensorsHeader, referenceOrder, SafetensorsWriter } from "./write-safetensors.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-st-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("encodeSafetensorsHeader", () => {
  it("matches the reference serializer byte for byte (its own test vectors)", () => {
    // huggingface/safetensors tensor.rs test_serialization / test_empty
    const one = encodeSafetensorsHeader(
      [{ key: "attn.0", dtype: "F32", shape: [1, 2, 3], byteLength: 24, begin: 0 }],
      undefined,
    );
    expect(one[0]).toBe(64);
    expect(Buffer.from(one.subarray(8)).toString()).toBe(
      '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}' + "",
    );
    const forced = encodeSafetensorsHeader(
      [{ key: "attn0", dtype: "F32", shape: [1, 1, 2, 3], byteLength: 24, begin: 0 }],
      undefined,
    );
    expect(forced[0]).toBe(72);
    expect(Buffer.from(forced.subarray(8)).toString().endsWith("}}       ")).toBe(true);
    expect([...encodeSafetensorsHeader([], undefined)]).toEqual([
      8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32,
    ]);
    expect(Buffer.from(encodeSafetensorsHeader([], { framework: "pt" }).subarray(8)).toString()).toBe(
      '{"__metadata__":{"framework":"pt"}}     ',
    );
  });

  it("orders tensors like the reference writer: dtype rank descending, then name", () => {
    const order = referenceOrder([
      { key: "b", dtype: "F16", shape: [1] },
      { key: "a", dtype: "F16", shape: [1] },
      { key: "z", dtype: "BF16", shape: [1] },
      { key: "i", dtype: "I32", shape: [1] },
      { key: "f", dtype: "F32", shape: [1] },
      { key: "p", dtype: "I64", shape: [1] },
      { key: "d", dtype: "F64", shape: [1] },
    ]);
    expect(order.map((t) => t.key)).toEqual(["p", "d", "f", "i", "z", "a", "b"]);
  });
});

describe("SafetensorsWriter", () => {
  it("streams tensors in chunks and records the data hash in modelspec.hash_sha256", async () => {
    const path = join(dir, "out.safetensors");
    const writer = await SafetensorsWriter.create(
      path,
      [
        { key: "w", dtype: "F16", shape: [4] },
        { key: "ids", dtype: "I64", shape: [2] },
        { key: "empty", dtype: "F32", shape: [0] },
      ],
      { metadata: { "modelspec.title": "t" }, selfHash: true },
    );
    expect(writer.order.map((t) => t.key)).toEqual(["ids", "empty", "w"]);
    await writer.write(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
    await writer.write(new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0]));
    await writer.write(new Uint8Array([9, 9, 9, 9]));
    await writer.write(new Uint8Array([8, 8, 8, 8]));
    const { dataSha256 } = await writer.finish();

    const bytes = await readFile(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const expected = createHash("sha256")
      .update(bytes.subarray(8 + headerLength))
      .digest("hex");
    expect(dataSha256).toBe(expected);
    const source = await FileByteSource.open(path);
    const header = await readSafetensorsHeader(source);
    expect(header.metadata["modelspec.hash_sha256"]).toBe(`0x${expected}`);
    expect([...(await readTensorBytes(header.tensors.get("w")!))]).toEqual([9, 9, 9, 9, 8, 8, 8, 8]);
    await source.close();
    expect(await readdir(dir)).toEqual(["out.safetensors"]);
  });

  it("leaves nothing behind when aborted or when a tensor is left unwritten", async () => {
    const path = join(dir, "out.safetensors");
    const writer = await SafetensorsWriter.create(path, [{ key: "w", dtype: "U8", shape: [4] }]);
    await writer.write(new Uint8Array([1, 2]));
    await expect(writer.finish()).rejects.toThrow(/not fully written/);
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses a chunk that would spill into the next tensor", async () => {
    const writer = await SafetensorsWriter.create(join(dir, "x.safetensors"), [
      { key: "w", dtype: "U8", shape: [2] },
    ]);
    await expect(writer.write(new Uint8Array(3))).rejects.toThrow(/does not fit tensor w/);
    expect(await readdir(dir)).toEqual([]);
  });
});
