import { describe, expect, it } from "vitest";
import { isGyozaError } from "../../errors.js";
import {
  buildSafetensorsBytes,
  buildValidSafetensors,
  pseudoRandomBytes,
} from "../../test-support/build-safetensors.js";
import { BufferByteSource } from "../byte-source.js";
import { readTensorBytes } from "../read-tensor.js";
import { MAX_HEADER_BYTES, readSafetensorsHeader } from "./read-safetensors.js";

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

async function rejection(bytes: Uint8Array): Promise<{ code: string; message: string }> {
  try {
    await readSafetensorsHeader(new BufferByteSource(bytes, "hostile.safetensors"));
  } catch (error) {
    if (!isGyozaError(error)) throw error;
    return { code: error.code, message: error.message };
  }
  throw new Error("the file was accepted");
}

describe("readSafetensorsHeader", () => {
  it("reads tensors, absolute offsets and metadata of a well-formed file", async () => {
    const bytes = buildValidSafetensors(
      [
        { key: "a", dtype: "F32", shape: [2], data: f32([1, 2]) },
        { key: "b", dtype: "F16", shape: [1, 2], data: new Uint8Array([0, 0x3c, 0, 0x40]) },
      ],
      { format: "pt" },
    );
    const header = await readSafetensorsHeader(new BufferByteSource(bytes));
    expect(header.metadata).toEqual({ format: "pt" });
    expect([...header.tensors.keys()]).toEqual(["a", "b"]);
    const b = header.tensors.get("b")!;
    expect(b.byteOffset).toBe(header.dataOffset + 8);
    expect([...(await readTensorBytes(b))]).toEqual([0, 0x3c, 0, 0x40]);
  });

  it("accepts zero-element tensors and a file with no tensors", async () => {
    const empty = buildSafetensorsBytes({}, new Uint8Array());
    expect((await readSafetensorsHeader(new BufferByteSource(empty))).tensors.size).toBe(0);
    const withEmpty = buildValidSafetensors([
      { key: "z", dtype: "F32", shape: [0, 4], data: new Uint8Array() },
      { key: "a", dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) },
    ]);
    expect((await readSafetensorsHeader(new BufferByteSource(withEmpty))).tensors.size).toBe(2);
  });

  it("rejects a file shorter than the 8-byte length", async () => {
    expect((await rejection(new Uint8Array(5))).message).toMatch(/too short/);
  });

  it("rejects a header length beyond the limit before allocating it", async () => {
    const bytes = buildSafetensorsBytes({}, new Uint8Array(), { declaredLength: 0xffff_ffff_ffffn });
    const error = await rejection(bytes);
    expect(error.code).toBe("limit");
    expect(error.message).toContain(String(MAX_HEADER_BYTES));
  });

  it("rejects a header length that runs past the end of the file", async () => {
    const bytes = buildSafetensorsBytes({}, new Uint8Array(), { declaredLength: 5000n });
    expect((await rejection(bytes)).message).toMatch(/claims 5000 bytes/);
  });

  it("rejects a header that is not JSON", async () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 8n, true);
    bytes.set(Buffer.from("{nojson}"), 8);
    expect((await rejection(bytes)).message).toMatch(/not valid UTF-8 JSON/);
  });

  it("rejects an unknown dtype", async () => {
    const bytes = buildSafetensorsBytes(
      { x: { dtype: "F128", shape: [1], data_offsets: [0, 16] } },
      new Uint8Array(16),
    );
    expect((await rejection(bytes)).message).toMatch(/unknown dtype "F128"/);
  });

  it("rejects a shape whose size disagrees with its data offsets", async () => {
    const bytes = buildSafetensorsBytes(
      { x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } },
      new Uint8Array(8),
    );
    expect((await rejection(bytes)).message).toMatch(/needs 12 bytes but data_offsets span 8/);
  });

  it("rejects data offsets that run past the end of the file", async () => {
    const bytes = buildSafetensorsBytes(
      { x: { dtype: "U8", shape: [64], data_offsets: [0, 64] } },
      new Uint8Array(8),
    );
    expect((await rejection(bytes)).message).toMatch(/runs past the end of the file/);
  });

  it("rejects overlapping tensors", async () => {
    const header = {
      x: { dtype: "U8", shape: [8], data_offsets: [0, 8] },
      y: { dtype: "U8", shape: [8], data_offsets: [4, 12] },
    };
    expect((await rejection(buildSafetensorsBytes(header, new Uint8Array(12)))).message).toMatch(/overlaps/);
  });

  it("rejects a gap between tensors", async () => {
    const header = {
      x: { dtype: "U8", shape: [4], data_offsets: [0, 4] },
      y: { dtype: "U8", shape: [4], data_offsets: [8, 12] },
    };
    expect((await rejection(buildSafetensorsBytes(header, new Uint8Array(12)))).message).toMatch(/gap/);
  });

  it("rejects trailing bytes after the last tensor", async () => {
    const header = { x: { dtype: "U8", shape: [4], data_offsets: [0, 4] } };
    expect((await rejection(buildSafetensorsBytes(header, new Uint8Array(9)))).message).toMatch(
      /trailing bytes/,
    );
  });

  it("rejects negative, fractional and astronomically large dimensions", async () => {
    for (const shape of [[-1], [1.5], [2 ** 40, 2 ** 40], ["1"]]) {
      const bytes = buildSafetensorsBytes(
        { x: { dtype: "U8", shape, data_offsets: [0, 1] } },
        new Uint8Array(1),
      );
      expect((await rejection(bytes)).code).toBe("format");
    }
  });

  it("rejects metadata values that are not strings", async () => {
    const bytes = buildSafetensorsBytes({ __metadata__: { n: 3 } }, new Uint8Array());
    expect((await rejection(bytes)).message).toMatch(/not a string/);
  });

  it("keeps a tensor named __proto__ as data without touching any prototype", async () => {
    const bytes = buildSafetensorsBytes(
      JSON.parse('{"__proto__": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'),
      new Uint8Array([7]),
    );
    const header = await readSafetensorsHeader(new BufferByteSource(bytes));
    expect([...header.tensors.keys()]).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).dtype).toBeUndefined();
  });

  it("produces only typed errors for thousands of mutated headers", async () => {
    const valid = buildValidSafetensors(
      [
        {
          key: "model.diffusion_model.out.2.weight",
          dtype: "F16",
          shape: [4, 2],
          data: pseudoRandomBytes(16, 3),
        },
        { key: "cond_stage_model.position_ids", dtype: "I64", shape: [1, 3], data: pseudoRandomBytes(24, 4) },
      ],
      { "modelspec.title": "x" },
    );
    const random = pseudoRandomBytes(4 * 3000, 99);
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const mutated = valid.slice();
      const position = ((random[i * 4]! << 8) | random[i * 4 + 1]!) % mutated.length;
      mutated[position] = random[i * 4 + 2]!;
      const cut = random[i * 4 + 3]! < 32 ? mutated.subarray(0, position) : mutated;
      try {
        await readSafetensorsHeader(new BufferByteSource(cut));
        accepted++;
      } catch (error) {
        expect(isGyozaError(error)).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(0); // mutations inside tensor data stay valid
  });
});
