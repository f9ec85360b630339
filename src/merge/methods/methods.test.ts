import { describe, expect, it } from "vitest";
import { isGyozaError } from "../../errors.js";
import { runMethod } from "../test-support/run-method.js";
import { builtinMethods, checkSpaces, findMethod } from "./index.js";

describe("builtinMethods", () => {
  it("names every method in snake_case with a reference and typed inputs", () => {
    for (const [id, method] of builtinMethods) {
      expect(method.id).toBe(id);
      expect(id).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(method.reference).toMatch(/^https:\/\//);
      expect(method.inputs.length).toBeGreaterThan(0);
      for (const param of method.params) expect(param.description.length).toBeGreaterThan(0);
    }
  });

  for (const method of builtinMethods.values()) {
    if (method.granularity !== "elementwise") continue;
    it(`${method.id} gives the same result on sub-ranges as on the whole tensor`, () => {
      const n = 257;
      const inputs = method.inputs.map((_, j) =>
        Array.from({ length: n }, (_, i) => Math.sin(i * (j + 1.3))),
      );
      const params = { alpha: 0.37, beta: 0.21, p: 0.4 };
      const whole = runMethod(method, inputs, params, { seed: 5 });
      const split = 100;
      const head = runMethod(
        method,
        inputs.map((v) => v.slice(0, split)),
        params,
        { seed: 5 },
      );
      const tail = runMethod(
        method,
        inputs.map((v) => v.slice(split)),
        params,
        { seed: 5, elementOffset: split },
      );
      expect([...head, ...tail]).toEqual(whole);
    });
  }
});

describe("checkSpaces", () => {
  const expectRecipeError = (run: () => void, message: RegExp, path?: string) => {
    try {
      run();
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "recipe")).toBe(true);
      expect((error as Error).message).toMatch(message);
      if (path) expect((error as { path?: string }).path).toBe(path);
    }
  };

  it("accepts inputs in the spaces the method declares", () => {
    checkSpaces(findMethod(builtinMethods, "add_delta"), ["weight", "delta"]);
    checkSpaces(findMethod(builtinMethods, "ties"), ["delta", "delta"]);
  });

  it("rejects a delta fed into a weight input", () => {
    expectRecipeError(
      () => checkSpaces(findMethod(builtinMethods, "weighted_sum"), ["weight", "delta"], "steps.mix.inputs"),
      /input "b" takes a weight, got a delta/,
      "steps.mix.inputs.b",
    );
  });

  it("rejects a weight fed into a delta input", () => {
    expectRecipeError(
      () => checkSpaces(findMethod(builtinMethods, "dare"), ["weight"]),
      /takes a delta, got a weight/,
    );
  });

  it("rejects the wrong number of inputs", () => {
    expectRecipeError(
      () => checkSpaces(findMethod(builtinMethods, "add_difference"), ["weight", "weight"]),
      /3 inputs/,
    );
  });

  it("suggests the closest id for a misspelt method", () => {
    try {
      findMethod(builtinMethods, "weighted_summ", "steps.mix.method");
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "recipe")).toBe(true);
      expect((error as { fix?: string }).fix).toBe('did you mean "weighted_sum"?');
    }
  });
});
