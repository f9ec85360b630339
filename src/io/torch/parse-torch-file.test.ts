import { createHash } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { type ByteSource, FileByteSource } from "../byte-source.js";
import {
  NumpyScalar,
  nodePath,
  PickleDict,
  PickleList,
  PickleTuple,
  type PickleValue,
  TorchTensorRef,
  walkPickle,
} from "../pickle/index.js";
import { readTensorBytes } from "../read-tensor.js";
import { parseTorchFile, type TorchFile } from "./parse-torch-file.js";
import {
  FIXTURE_DIR,
  fixtureExpectation,
  fixtureNames,
  storedTensorOf,
} from "./test-support/fixture-support.js";

const goodFixtures = fixtureNames().filter((name) => !fixtureExpectation(name).must_reject);
const opened: ByteSource[] = [];
afterAll(async () => {
  for (const source of opened) await source.close();
});

async function parseFixture(
  name: string,
): Promise<{ file: TorchFile; source: ByteSource; nodes: Map<string, PickleValue> }> {
  const source = await FileByteSource.open(FIXTURE_DIR + name);
  opened.push(source);
  const file = await parseTorchFile(source);
  const nodes = new Map<string, PickleValue>();
  for (const node of walkPickle(file.root)) nodes.set(nodePath(node).join("."), node.value);
  return { file, source, nodes };
}

/** Test-only conversion of trusted fixture values to JSON-like data (recursive is fine here). */
function toPlain(value: PickleValue): unknown {
  if (value instanceof PickleDict) {
    return Object.fromEntries([...value.entries].map(([key, child]) => [String(key), toPlain(child)]));
  }
  if (value instanceof PickleList || value instanceof PickleTuple) return value.items.map(toPlain);
  if (value instanceof NumpyScalar) return value.value;
  return value;
}

function containerType(value: PickleValue): string {
  if (value instanceof PickleDict) return value.type;
  if (value instanceof PickleList) return "list";
  if (value instanceof PickleTuple) return "tuple";
  return "leaf";
}

describe.each(goodFixtures)("parseTorchFile on %s", (name) => {
  const expected = fixtureExpectation(name);

  it("reports the format, top-level keys, globals and opcodes torch wrote", async () => {
    const { file } = await parseFixture(name);
    expect(file.format).toBe(expected.format);
    expect(file.root).toBeInstanceOf(PickleDict);
    const root = file.root as PickleDict;
    expect(root.type === "dict" ? "dict" : "OrderedDict").toBe(expected.top_level_type);
    expect([...root.entries.keys()]).toEqual(expected.top_level_keys);
    expect(file.globals).toEqual(expected.globals);
    expect(file.opcodes).toEqual(expected.opcodes);
    if (expected.zip) expect(file.archivePrefix).toBe(expected.zip.archive_prefix);
  });

  it("finds every tensor with its dtype, shape, stride, offset, storage and exact bytes", async () => {
    const { file, source, nodes } = await parseFixture(name);
    const tensorPaths = [...nodes]
      .filter(([, value]) => value instanceof TorchTensorRef)
      .map(([path]) => path);
    expect(tensorPaths).toEqual(Object.keys(expected.tensors));
    for (const [path, want] of Object.entries(expected.tensors)) {
      const tensor = nodes.get(path) as TorchTensorRef;
      expect({
        dtype: tensor.storage.dtype,
        shape: tensor.shape,
        stride: tensor.stride,
        storage_offset: tensor.storageOffset,
      }).toEqual({
        dtype: want.dtype,
        shape: want.shape,
        stride: want.stride,
        storage_offset: want.storage_offset,
      });
      expect(tensor.storage.key).toBe(expected.tensor_storage[path]);
      const bytes = await readTensorBytes(storedTensorOf(file, source, path, tensor));
      expect(createHash("sha256").update(bytes).digest("hex"), path).toBe(want.sha256_contiguous);
    }
    const parameters = tensorPaths.filter((path) => (nodes.get(path) as TorchTensorRef).isParameter);
    expect(parameters).toEqual(expected.parameter_paths);
    const requiresGrad = tensorPaths.filter((path) => (nodes.get(path) as TorchTensorRef).requiresGrad);
    expect(requiresGrad).toEqual(expected.requires_grad_paths);
  });

  it("locates every storage at the data offset torch wrote", async () => {
    const { file } = await parseFixture(name);
    expect([...file.storages.keys()].sort()).toEqual(Object.keys(expected.storages).sort());
    for (const [key, want] of Object.entries(expected.storages)) {
      const storage = file.storages.get(key)!;
      expect({
        dtype: storage.dtype,
        numel: storage.numel,
        nbytes: storage.byteLength,
        location: storage.location,
        persistent_id_len: storage.persistentIdLength,
        data_offset: storage.dataOffset,
        ...("zip_entry" in want ? { zip_entry: storage.entryName } : {}),
      }).toEqual(want);
    }
  });

  it("predicts those offsets from torch's layout, reading only a few local headers", async () => {
    const { file } = await parseFixture(name);
    // a zip torch wrote follows torchDataOffset, so its storages read through the checking source
    expect(file.dataSource !== undefined).toBe(file.format === "zip" && file.storages.size > 0);
  });

  it("reads scalars, numpy scalars, None leaves, containers and BUILD attributes", async () => {
    const { nodes } = await parseFixture(name);
    for (const [path, want] of Object.entries(expected.scalars)) {
      const value = nodes.get(path);
      expect(value instanceof NumpyScalar ? value.value : value, path).toEqual(want);
    }
    for (const [path, want] of Object.entries(expected.numpy_scalars)) {
      const value = nodes.get(path) as NumpyScalar;
      expect({ dtype: value.dtype, value: value.value }).toEqual(want);
    }
    for (const path of expected.none_leaves) expect(nodes.get(path), path).toBeNull();
    for (const [path, want] of Object.entries(expected.containers)) {
      const value = nodes.get(path)!;
      const length = value instanceof PickleDict ? value.entries.size : (value as PickleList).items.length;
      expect({ type: containerType(value), len: length }, path).toEqual({ type: want.type, len: want.len });
      if (want.key_types) {
        const keyTypes = new Set(
          [...(value as PickleDict).entries.keys()].map((key) =>
            typeof key === "number" ? "int" : typeof key,
          ),
        );
        expect([...keyTypes]).toEqual(want.key_types);
      }
    }
    for (const [path, want] of Object.entries(expected.attributes)) {
      const dict = nodes.get(path) as PickleDict;
      expect(Object.fromEntries([...dict.attributes].map(([key, value]) => [key, toPlain(value)]))).toEqual(
        want,
      );
    }
  });
});
