import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GyozaError } from "../../errors.js";
import { BufferByteSource } from "../byte-source.js";
import { interpretPickle, PickleWriter, walkPickle } from "../pickle/index.js";
import { readTensorBytes } from "../read-tensor.js";
import { torchCheckpointFromFile } from "./open-torch-checkpoint.js";
import { parseTorchFile } from "./parse-torch-file.js";
import { FIXTURE_DIR, fixtureExpectation, fixtureNames } from "./test-support/fixture-support.js";

/** Mutants per good fixture; with the pickle mutants this keeps the suite at a few seconds. */
const MUTANTS_PER_FIXTURE = 400;
const PICKLE_MUTANTS = 2000;
/** A single mutant must be decided within this time (no hang, no quadratic blow-up). */
const MAX_MUTANT_MS = 1000;
/** Tensors read per accepted mutant, and the largest read (stride-0 views may legally expand). */
const TENSORS_READ_PER_MUTANT = 8;
const MAX_READ_BYTES = 1 << 20;

/** mulberry32: a tiny seeded PRNG so every run mutates the same way. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Byte flips, truncations and length-field inflations, biased towards the structure-bearing regions. */
function mutate(original: Uint8Array, next: () => number, hotRegions: [number, number][]): Uint8Array {
  const bytes = original.slice();
  const position = () => {
    const region = next() < 0.7 ? hotRegions[Math.floor(next() * hotRegions.length)]! : [0, bytes.length];
    const [begin, end] = region as [number, number];
    return Math.min(bytes.length - 1, begin + Math.floor(next() * Math.max(1, end - begin)));
  };
  const kind = next();
  if (kind < 0.15) return bytes.subarray(0, Math.floor(next() * bytes.length));
  const edits = 1 + Math.floor(next() * 4);
  for (let i = 0; i < edits; i++) {
    const at = position();
    if (kind < 0.55) bytes[at] = Math.floor(next() * 256);
    else if (kind < 0.8) bytes[at]! ^= 1 << Math.floor(next() * 8);
    else {
      // Inflate a little-endian length field: a huge u32, or the top byte of a u16/u32 set.
      const big = [0xff, 0xff, 0xff, 0x7f, 0xf0, 0xff, 0xff, 0xff][Math.floor(next() * 8)]!;
      for (let k = 0; k < 4 && at + k < bytes.length; k++) bytes[at + k] = k === 0 ? big : 0xff;
    }
  }
  return bytes;
}

async function decide(bytes: Uint8Array): Promise<"accepted" | "rejected"> {
  const source = new BufferByteSource(bytes, "mutant");
  try {
    const file = await parseTorchFile(source);
    const checkpoint = torchCheckpointFromFile(file, source, "mutant");
    let read = 0;
    for (const tensor of checkpoint.tensors.values()) {
      if (read++ >= TENSORS_READ_PER_MUTANT) break;
      if (tensor.byteLength <= MAX_READ_BYTES) await readTensorBytes(tensor);
    }
    return "accepted";
  } catch (error) {
    if (!(error instanceof GyozaError)) throw error;
    return "rejected";
  }
}

const goodFixtures = fixtureNames().filter((name) => !fixtureExpectation(name).must_reject);

describe("fuzzing the torch reader", () => {
  it.each(goodFixtures)("turns every mutant of %s into a result or a GyozaError", async (name) => {
    const original = new Uint8Array(readFileSync(FIXTURE_DIR + name));
    const expected = fixtureExpectation(name) as unknown as {
      zip?: { entries: { data_offset: number; size: number }[] };
    };
    // The pickle(s) and the zip directory carry the structure; storage bytes are just data.
    const pickle = expected.zip?.entries[0];
    const hot: [number, number][] = pickle
      ? [
          [pickle.data_offset, pickle.data_offset + pickle.size],
          [original.length - 2048, original.length],
        ]
      : [[0, Math.min(original.length, 2100)]];
    const next = random(name.length * 7919);
    const outcomes = { accepted: 0, rejected: 0 };
    let slowest = 0;
    for (let i = 0; i < MUTANTS_PER_FIXTURE; i++) {
      const mutant = mutate(original, next, hot);
      const started = performance.now();
      outcomes[await decide(mutant)]++;
      slowest = Math.max(slowest, performance.now() - started);
    }
    expect(outcomes.rejected).toBeGreaterThan(MUTANTS_PER_FIXTURE / 10);
    expect(slowest).toBeLessThan(MAX_MUTANT_MS);
  });

  it("turns every mutant of a pickle built in code into a value or a GyozaError", async () => {
    const w = new PickleWriter().proto(2).emptyDict();
    w.put();
    w.mark().string("state_dict").global("collections", "OrderedDict").emptyTuple().reduce();
    w.put();
    w.mark().string("w").global("torch._utils", "_rebuild_tensor_v2").mark();
    w.mark()
      .string("storage")
      .global("torch", "HalfStorage")
      .string("0")
      .string("cpu")
      .int(12)
      .tuple()
      .binPersId();
    w.int(0).int(3).int(4).tuple2().int(4).int(1).tuple2().bool(false).get(1).tuple().reduce().setItems();
    w.string("epoch").int(70000).string("lr").float(1e-4).string("name").binBytes(new Uint8Array(3));
    w.string("list").emptyList().mark().int(-1).none().bool(true).appends().setItems().stop();
    const original = w.bytes();
    const next = random(42);
    const outcomes = { accepted: 0, rejected: 0 };
    for (let i = 0; i < PICKLE_MUTANTS; i++) {
      const mutant = mutate(original, next, [[0, original.length]]);
      try {
        const { value } = await interpretPickle(new BufferByteSource(mutant));
        for (const _ of walkPickle(value));
        outcomes.accepted++;
      } catch (error) {
        if (!(error instanceof GyozaError)) throw error;
        outcomes.rejected++;
      }
    }
    expect(outcomes.rejected).toBeGreaterThan(PICKLE_MUTANTS / 2);
    expect(outcomes.accepted).toBeGreaterThan(0);
  });
});
