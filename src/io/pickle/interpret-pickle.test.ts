import { describe, expect, it } from "vitest";
import { GyozaError, type GyozaErrorCode } from "../../errors.js";
import { BufferByteSource } from "../byte-source.js";
import { interpretPickle } from "./interpret-pickle.js";
import { MAX_MARK_DEPTH, MAX_NESTING_DEPTH } from "./limits.js";
import { PickleWriter } from "./pickle-writer.js";
import { NumpyScalar, PickleDict, type PickleList, type PickleTuple, TorchTensorRef } from "./values.js";
import { walkPickle } from "./walk-pickle.js";

const run = (w: PickleWriter) => interpretPickle(new BufferByteSource(w.bytes(), "test.pkl"));
const start = () => new PickleWriter().proto(2);

async function rejection(w: PickleWriter): Promise<GyozaError> {
  const error = await run(w).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GyozaError);
  return error as GyozaError;
}

async function expectRejected(w: PickleWriter, code: GyozaErrorCode, message: RegExp): Promise<void> {
  const error = await rejection(w);
  expect(error.code).toBe(code);
  expect(error.message).toMatch(message);
}

/** `('storage', torch.FloatStorage, key, 'cpu', numel)` BINPERSID, then _rebuild_tensor_v2(...). */
function tensorOps(
  w: PickleWriter,
  key: string,
  numel: number,
  shape: number[],
  stride: number[],
  offset = 0,
): PickleWriter {
  w.global("torch._utils", "_rebuild_tensor_v2").mark();
  w.mark()
    .string("storage")
    .global("torch", "FloatStorage")
    .string(key)
    .string("cpu")
    .int(numel)
    .tuple()
    .binPersId();
  w.int(offset).mark();
  for (const d of shape) w.int(d);
  w.tuple().mark();
  for (const s of stride) w.int(s);
  w.tuple().bool(false).global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce();
  return w;
}

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

describe("interpretPickle refusals", () => {
  it.each([
    ["os", "system"],
    ["posix", "system"],
    ["__builtin__", "exec"],
    ["builtins", "eval"],
    ["commands", "Popen"],
    ["torch", "load"],
    ["torch._utils", "_rebuild_device_tensor_from_numpy"],
    ["collections", "OrderedDictX"],
  ])("rejects GLOBAL %s.%s naming it exactly", async (module, name) => {
    await expectRejected(
      start().global(module, name),
      "unsafe-pickle",
      new RegExp(`refusing global ${module}\\.${name}:`),
    );
  });

  it("rejects STACK_GLOBAL of a non-allowlisted literal", async () => {
    const w = new PickleWriter().proto(4).string("os").string("system").raw(0x93);
    await expectRejected(w, "unsafe-pickle", /refusing global os\.system/);
  });

  it("rejects STACK_GLOBAL whose name is not a literal string", async () => {
    const w = new PickleWriter().proto(4).string("collections").int(5).raw(0x93);
    await expectRejected(w, "unsafe-pickle", /STACK_GLOBAL whose module or name is not a literal/);
  });

  it("rejects _codecs.encode with any encoding but latin-1", async () => {
    const w = start().global("_codecs", "encode").string("bf").string("rot13").tuple2().reduce();
    await expectRejected(w, "unsafe-pickle", /_codecs\.encode with encoding "rot13"/);
  });

  it.each([
    ["OBJ", [0x28, 0x6f], 3],
    ["NEWOBJ_EX", [0x92], 2],
    ["EXT1", [0x82, 1], 2],
    ["EXT2", [0x83, 1, 0], 2],
    ["EXT4", [0x84, 1, 0, 0, 0], 2],
    ["PERSID", [0x50], 2],
  ])("rejects the %s opcode naming it and its byte offset", async (name, bytes, offset) => {
    await expectRejected(
      start().raw(...bytes),
      "unsafe-pickle",
      new RegExp(`opcode ${name}.*byte ${offset}\\)`),
    );
  });

  it("rejects an unknown opcode byte with its offset", async () => {
    await expectRejected(start().none().raw(0xff), "format", /invalid pickle opcode 0xff.*byte 3/);
  });

  it("rejects REDUCE on anything that is not an allowlisted callable", async () => {
    await expectRejected(
      start().string("x").emptyTuple().reduce(),
      "unsafe-pickle",
      /refusing to call a str/,
    );
  });

  it("rejects REDUCE of a storage type", async () => {
    const w = start().global("torch", "FloatStorage").emptyTuple().reduce();
    await expectRejected(w, "unsafe-pickle", /refusing to call a storage-type/);
  });

  it("rejects OrderedDict called with arguments", async () => {
    const w = start().global("collections", "OrderedDict").emptyList().tuple1().reduce();
    await expectRejected(w, "unsafe-pickle", /OrderedDict called with arguments/);
  });

  it("rejects NEWOBJ of an allowlisted function", async () => {
    const w = start().global("torch._utils", "_rebuild_tensor_v2").emptyTuple().raw(0x81);
    await expectRejected(w, "unsafe-pickle", /NEWOBJ/);
  });

  it.each(["__setstate__", "__proto__", "constructor", "prototype", "__dict__", "not-an-identifier", ""])(
    "rejects BUILD that sets attribute %j on an OrderedDict",
    async (key) => {
      const w = start().global("collections", "OrderedDict").emptyTuple().reduce();
      w.emptyDict().string(key).int(1).setItem().build();
      await expectRejected(w, "unsafe-pickle", /refusing BUILD that sets attribute/);
    },
  );

  it("rejects BUILD with a non-dict state", async () => {
    const w = start().global("collections", "OrderedDict").emptyTuple().reduce().string("cmd").build();
    await expectRejected(w, "unsafe-pickle", /with a str state/);
  });

  it("rejects BUILD on a plain dict", async () => {
    await expectRejected(
      start().emptyDict().emptyDict().build(),
      "unsafe-pickle",
      /refusing BUILD on a dict/,
    );
  });

  it.each([
    ["accepts", "an empty state", false],
    ["rejects", "a non-empty state", true],
  ])("%s _rebuild_parameter_with_state with %s", async (_verb, _what, nonEmpty) => {
    const w = start().global("torch._utils", "_rebuild_parameter_with_state").mark();
    tensorOps(w, "0", 4, [4], [1]).bool(true).global("collections", "OrderedDict").emptyTuple().reduce();
    w.emptyDict();
    if (nonEmpty) w.string("x").int(1).setItem();
    w.tuple().reduce().stop();
    if (nonEmpty) return expectRejected(w, "unsafe-pickle", /non-empty state/);
    const { value } = await run(w);
    expect((value as TorchTensorRef).isParameter).toBe(true);
  });

  it("rejects a persistent id that is not a storage tuple", async () => {
    await expectRejected(start().string("x").binPersId(), "format", /persistent id is a str/);
  });

  it("rejects a storage key declared twice with different sizes", async () => {
    const w = start().mark();
    tensorOps(w, "0", 4, [4], [1]);
    tensorOps(w, "0", 8, [8], [1]);
    await expectRejected(w.tuple(), "format", /declared twice/);
  });

  it("rejects a tensor whose size and stride ranks differ", async () => {
    await expectRejected(tensorOps(start(), "0", 4, [2, 2], [1]), "format", /differ in rank/);
  });
});

describe("interpretPickle limits", () => {
  it("refuses MARKs nested deeper than the limit quickly", async () => {
    const w = start();
    for (let i = 0; i < 100_000; i++) w.mark();
    const started = performance.now();
    await expectRejected(w, "limit", new RegExp(`deeper than ${MAX_MARK_DEPTH}`));
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("rejects a string whose length runs past the end of the data", async () => {
    await expectRejected(
      start().raw(0x58, 0xf0, 0xff, 0xff, 0xff, 0x41),
      "format",
      /4294967280 bytes but only 1 remain/,
    );
  });

  it("rejects a LONG4 wider than the limit", async () => {
    await expectRejected(start().raw(0x8b, 0, 1, 0, 0), "limit", /integer of 256 bytes/);
  });

  it("rejects BINGET of a memo entry never stored", async () => {
    await expectRejected(start().get(7), "format", /memo entry 7 was never stored/);
  });

  it("rejects popping below a MARK", async () => {
    await expectRejected(start().none().mark().append(), "format", /stack underflow/);
  });

  it("rejects STOP with values left over", async () => {
    await expectRejected(start().none().none().stop(), "format", /unbalanced stack/);
  });

  it("rejects a pickle that ends without STOP", async () => {
    await expectRejected(start().none(), "format", /truncated/);
  });

  it("walks a list that contains itself into a limit error, not a hang or stack overflow", async () => {
    const w = start().emptyList();
    w.put();
    w.get(0).append().stop();
    const { value } = await run(w);
    expect(() => [...walkPickle(value)]).toThrow(new RegExp(`deeper than ${MAX_NESTING_DEPTH}`));
  });

  it("walks 100,000 nested TUPLE1s into a limit error", async () => {
    const w = start().none();
    for (let i = 0; i < 100_000; i++) w.tuple1();
    const { value } = await run(w.stop());
    expect(() => [...walkPickle(value)]).toThrow(GyozaError);
  });
});
