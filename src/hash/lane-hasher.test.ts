import { randomBytes } from "node:crypto";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { parseHashAlgorithms } from "./file-hashes.js";
import { assignLanes } from "./hash-pass.js";
import { laneDependencies } from "./lane-dependencies.js";
import { crc32Bytewise, createLaneHasher } from "./lane-hasher.js";

describe("lanes", () => {
  it("splits the four streams over two threads into two lanes of similar cost", () => {
    const lanes = assignLanes(["sha256", "autov3", "blake3", "crc32"], 2);
    expect(lanes).toHaveLength(2);
    expect(lanes.map((lane) => lane.filter((stream) => stream === "sha256" || stream === "autov3"))).toEqual([
      ["sha256"],
      ["autov3"],
    ]);
    expect(lanes.flat().sort()).toEqual(["autov3", "blake3", "crc32", "sha256"]);
  });

  it("never makes more lanes than streams, nor fewer than one", () => {
    expect(assignLanes(["crc32"], 8)).toEqual([["crc32"]]);
    expect(assignLanes(["sha256", "crc32"], 0)).toEqual([["sha256", "crc32"]]);
  });

  it("gives the same BLAKE3 with the pure-JavaScript fallback as with the native module", () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const digest = (forceJavaScriptBlake3: boolean) => {
      const lane = createLaneHasher(["blake3"], 0, laneDependencies({ forceJavaScriptBlake3 }));
      lane.update(bytes.subarray(0, 1000), 0);
      lane.update(bytes.subarray(1000), 1000);
      return lane.digest().blake3;
    };
    expect(digest(true)).toBe(digest(false));
  });

  it("computes the same CRC-32 byte by byte (the fallback for old Node) as zlib, across updates", () => {
    const bytes = randomBytes(100_000);
    const split = crc32Bytewise(bytes.subarray(40_000), crc32Bytewise(bytes.subarray(0, 40_000), 0));
    expect(split).toBe(zlib.crc32(bytes));
    expect(crc32Bytewise(new TextEncoder().encode("hello world"), 0)).toBe(0x0d4a1185);
  });
});

describe("parseHashAlgorithms", () => {
  it("reads a comma list in any case, keeps the documented order, and expands all", () => {
    expect(parseHashAlgorithms("CRC32, sha256")).toEqual(["sha256", "crc32"]);
    expect(parseHashAlgorithms("all")).toHaveLength(6);
  });

  it("rejects an unknown name with a suggestion", () => {
    expect(() => parseHashAlgorithms("blake2")).toThrow(/unknown hash algorithm "blake2"/);
  });
});
