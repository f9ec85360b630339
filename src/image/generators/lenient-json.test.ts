import { describe, expect, it } from "vitest";
import { parseJsonObject, parseLenientJson } from "./lenient-json.js";

describe("parseLenientJson", () => {
  it("accepts the NaN and Infinity that Python's json.dumps writes, as null", () => {
    expect(parseLenientJson('{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN stays text"}')).toEqual({
      a: null,
      b: [null, null],
      c: "NaN stays text",
    });
  });

  it("returns undefined for text that is not JSON, and objects only from parseJsonObject", () => {
    expect(parseLenientJson("{oops")).toBeUndefined();
    expect(parseJsonObject("[1, 2]")).toBeUndefined();
    expect(parseJsonObject(' {"a": 1}')).toEqual({ a: 1 });
  });
});
