import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { BufferByteSource } from "./byte-source.js";
import { ConcatByteSource } from "./concat-byte-source.js";

const bytes = (...values: number[]) => new BufferByteSource(new Uint8Array(values));
// parts 0..3, an empty part, 4..5, 6..9
const joined = new ConcatByteSource([bytes(0, 1, 2, 3), bytes(), bytes(4, 5), bytes(6, 7, 8, 9)]);

describe("ConcatByteSource", () => {
  it.each([
    [0, 10],
    [0, 4],
    [2, 3],
    [3, 2],
    [4, 2],
    [5, 3],
    [3, 7],
    [9, 1],
    [10, 0],
  ])("reads from offset %i, %i bytes, across the parts as one", async (offset, length) => {
    const expected = [...Array(length).keys()].map((i) => offset + i);
    expect([...(await joined.read(offset, length))]).toEqual(expected);
    expect([...(await joined.readInto(new Uint8Array(length), offset))]).toEqual(expected);
  });

  it("is as large as its parts together", () => {
    expect(joined.size).toBe(10);
  });

  it("refuses a read past the end of the last part", async () => {
    const error = await joined.read(8, 3).catch((caught: unknown) => caught);
    expect(isGyozaError(error, "format")).toBe(true);
  });
});
