import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FileByteSource } from "../byte-source.js";
import { readTensorBytes } from "../read-tensor.js";
import { openTorchCheckpoint } from "./open-torch-checkpoint.js";
import { FIXTURE_DIR, fixtureExpectation, fixtureNames } from "./test-support/fixture-support.js";

const goodFixtures = fixtureNames().filter((name) => !fixtureExpectation(name).must_reject);

async function open(name: string) {
  return openTorchCheckpoint(await FileByteSource.open(FIXTURE_DIR + name), FIXTURE_DIR + name);
}

describe.each(goodFixtures)("openTorchCheckpoint on %s", (name) => {
  const expected = fixtureExpectation(name);
  const wrapped = expected.top_level_keys.includes("state_dict");
  const stateDictPaths = Object.keys(expected.tensors).filter(
    (path) => !wrapped || path.startsWith("state_dict."),
  );

  it("exposes the state dict as a loader sees it, with exact bytes", async () => {
    const checkpoint = await open(name);
    try {
      expect(checkpoint.format).toBe(expected.format === "zip" ? "ckpt-zip" : "ckpt-legacy");
      expect(checkpoint.pickleGlobals).toEqual(expected.globals);
      expect(checkpoint.metadata).toEqual({});
      const keys = stateDictPaths.map((path) => (wrapped ? path.slice("state_dict.".length) : path));
      expect([...checkpoint.tensors.keys()]).toEqual(keys);
      for (const [index, path] of stateDictPaths.entries()) {
        const tensor = checkpoint.tensors.get(keys[index]!)!;
        const want = expected.tensors[path]!;
        expect(tensor.dtype).toBe(want.dtype);
        expect(tensor.shape).toEqual(want.shape);
        expect(tensor.storageKey).toBe(expected.tensor_storage[path]);
        const storage = expected.storages[tensor.storageKey!] as { data_offset: number };
        const itemSize =
          tensor.byteLength /
          Math.max(
            1,
            tensor.shape.reduce((a, b) => a * b, 1),
          );
        if (tensor.byteLength > 0)
          expect(tensor.byteOffset).toBe(storage.data_offset + want.storage_offset * itemSize);
        const bytes = await readTensorBytes(tensor);
        expect(createHash("sha256").update(bytes).digest("hex"), path).toBe(want.sha256_contiguous);
      }
    } finally {
      await checkpoint.close();
    }
  });

  it("lists tensors outside the state dict and scalar leaves as extras", async () => {
    const checkpoint = await open(name);
    try {
      const outside = Object.keys(expected.tensors).filter((path) => !stateDictPaths.includes(path));
      for (const path of [...outside, ...Object.keys(expected.scalars), ...expected.none_leaves]) {
        expect(checkpoint.extras).toContain(path);
      }
      for (const key of checkpoint.tensors.keys()) expect(checkpoint.extras).not.toContain(key);
    } finally {
      await checkpoint.close();
    }
  });
});

describe("openTorchCheckpoint layouts", () => {
  it("marks transposed and expanded tensors as strided and the rest as contiguous", async () => {
    const checkpoint = await open("edge_dtypes_views.ckpt");
    try {
      expect(checkpoint.tensors.get("edge.transposed_noncontig")!.strides).toEqual([1, 10]);
      expect(checkpoint.tensors.get("edge.expanded_stride0")!.strides).toEqual([0, 1]);
      expect(checkpoint.tensors.get("edge.shared_view_rows2on")!.strides).toBeNull();
      expect(checkpoint.tensors.get("edge.zero_dim_f32")!.strides).toBeNull();
      expect(checkpoint.extras).toContain("optimizer_states.0.state.0.exp_avg");
      expect(checkpoint.extras).toContain("epoch");
    } finally {
      await checkpoint.close();
    }
  });

  it("flattens an A1111 embedding's string_to_param and ignores its cuda:0 location", async () => {
    const checkpoint = await open("ti_embedding_auroraneg.pt");
    try {
      expect([...checkpoint.tensors.keys()]).toEqual(["string_to_param.*"]);
      expect(checkpoint.extras).toContain("name");
    } finally {
      await checkpoint.close();
    }
  });
});
