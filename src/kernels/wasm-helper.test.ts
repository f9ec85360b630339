import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { SPLIT_MIN_ELEMENTS, WasmHelper } from "./wasm-helper.js";

describe("the WebAssembly helper thread", () => {
  it("reports its own failure with the cause instead of hanging or failing silently", () => {
    const memory = new (
      globalThis as unknown as { WebAssembly: { Memory: new (d: object) => object } }
    ).WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const helper = new WasmHelper({}, memory); // not a WebAssembly.Module: the helper cannot start its instance
    const count = SPLIT_MIN_ELEMENTS;
    const call = {
      a: 0,
      aSize: 2,
      aType: 0,
      b: 0,
      bSize: 2,
      bType: 0,
      out: 0,
      outSize: 2,
      outType: 0,
      w0: 0.5,
      w1: 0.5,
    };
    let frontRan = 0;
    let error: unknown;
    try {
      helper.split(call, count, (n) => {
        frontRan = n;
      });
    } catch (caught) {
      error = caught;
    }
    expect(frontRan).toBe(count / 2);
    expect(isGyozaError(error) && error.message).toMatch(
      /^the WebAssembly helper thread failed: .*WebAssembly\.Instance/,
    );
    expect(String((error as Error).cause)).toMatch(/WebAssembly\.Instance/);
  });
});
