import { describe, expect, it } from "vitest";
import { PickleWriter } from "./pickle-writer.js";
import { run, start, tensorOps } from "./test-support/pickle-test-helpers.js";
import { NumpyScalar, PickleDict, type PickleList, type PickleTuple, TorchTensorRef } from "./values.js";

describe("interpretPickle values", () => {
  it("builds dicts, lists, tuples and scalars of every width", async () => {
    const w = start().emptyDict().mark();
    w.string("ints")
      .mark()
      .int(7)
      .int(300)
      .int(-5)
      .int(70000)
      .int(2n ** 40n)
      .int(-(2n ** 70n))
      .raw(0x8a, 0)
      .tuple();
    w.string("float").float(4.5e-6);
    w.string("flags").bool(true).bool(false).none().tuple3();
    w.string("list").emptyList().mark().int(1).int(2).appends();
    w.setItems().stop();
    const { value } = await run(w);
    const dict = value as PickleDict;
    expect((dict.entries.get("ints") as PickleTuple).items).toEqual([
      7,
      300,
      -5,
      70000,
      2 ** 40,
      -(2n ** 70n),
      0,
    ]);
    expect(dict.entries.get("float")).toBe(4.5e-6);
    expect((dict.entries.get("flags") as PickleTuple).items).toEqual([true, false, null]);
    expect((dict.entries.get("list") as PickleList).items).toEqual([1, 2]);
  });

  it("reads protocol 4 frames, MEMOIZE, SHORT_BINUNICODE, BINUNICODE8 and bytes", async () => {
    const built = new PickleWriter().proto(4).raw(0x95, 29, 0, 0, 0, 0, 0, 0, 0).mark();
    built.raw(0x8c, 2, 0x68, 0x69).raw(0x94).raw(0x8d, 1, 0, 0, 0, 0, 0, 0, 0, 0x21).raw(0x43, 2, 1, 2);
    built.raw(0x68, 0).raw(0x6a, 0, 0, 0, 0).tuple().stop();
    const { value, opcodes } = await run(built);
    expect((value as PickleTuple).items).toEqual(["hi", "!", Uint8Array.from([1, 2]), "hi", "hi"]);
    expect([...opcodes]).toEqual(
      expect.arrayContaining(["FRAME", "MEMOIZE", "BINUNICODE8", "SHORT_BINBYTES"]),
    );
  });

  it("rebuilds tensors as deferred references and records their storages", async () => {
    const w = start().emptyDict().string("w");
    tensorOps(w, "0", 12, [3, 4], [4, 1], 0).setItem().stop();
    const result = await run(w);
    const tensor = (result.value as PickleDict).entries.get("w") as TorchTensorRef;
    expect(tensor).toBeInstanceOf(TorchTensorRef);
    expect({ shape: tensor.shape, stride: tensor.stride, key: tensor.storage.key }).toEqual({
      shape: [3, 4],
      stride: [4, 1],
      key: "0",
    });
    expect([...result.globals]).toEqual([
      "torch._utils._rebuild_tensor_v2",
      "torch.FloatStorage",
      "collections.OrderedDict",
    ]);
    expect(result.storages.get("0")!.numel).toBe(12);
  });

  it("decodes numpy scalars smuggled through _codecs.encode as latin-1", async () => {
    const w = start().global("numpy.core.multiarray", "scalar");
    w.global("numpy", "dtype").string("f8").bool(false).bool(true).tuple3().reduce();
    w.mark().int(3).string("<").none().none().none().int(-1).int(-1).int(0).tuple().build();
    const raw = new Uint8Array(8);
    new DataView(raw.buffer).setFloat64(0, 0.18215, true);
    w.global("_codecs", "encode")
      .string(String.fromCharCode(...raw))
      .string("latin1")
      .tuple2()
      .reduce();
    w.tuple2().reduce().stop();
    const { value } = await run(w);
    expect(value).toEqual(new NumpyScalar("float64", 0.18215));
  });

  it("accepts STACK_GLOBAL with literal names and NEWOBJ of OrderedDict", async () => {
    const w = new PickleWriter().proto(4).string("collections").string("OrderedDict").raw(0x93);
    w.emptyTuple().raw(0x81).stop();
    const { value } = await run(w);
    expect(value).toBeInstanceOf(PickleDict);
    expect((value as PickleDict).type).toBe("OrderedDict");
  });

  it("keeps BUILD attributes in a Map so no key reaches a JS prototype", async () => {
    const w = start().global("collections", "OrderedDict").emptyTuple().reduce();
    w.emptyDict().string("_metadata").emptyDict().setItem().build().stop();
    const { value } = await run(w);
    expect([...(value as PickleDict).attributes.keys()]).toEqual(["_metadata"]);
  });

  it("stores dict keys named __proto__ and constructor as plain Map entries", async () => {
    const w = start()
      .emptyDict()
      .mark()
      .string("__proto__")
      .int(1)
      .string("constructor")
      .int(2)
      .setItems()
      .stop();
    const { value } = await run(w);
    expect([...(value as PickleDict).entries.keys()]).toEqual(["__proto__", "constructor"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });
});
