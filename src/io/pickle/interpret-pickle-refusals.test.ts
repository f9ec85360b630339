import { describe, expect, it } from "vitest";
import { GyozaError } from "../../errors.js";
import { MAX_MARK_DEPTH, MAX_NESTING_DEPTH } from "./limits.js";
import { PickleWriter } from "./pickle-writer.js";
import { expectRejected, run, start, tensorOps } from "./test-support/pickle-test-helpers.js";
import type { TorchTensorRef } from "./values.js";
import { walkPickle } from "./walk-pickle.js";

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
