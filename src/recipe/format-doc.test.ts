import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BLOCK_RULES, builtinMethods, CURVE_NAMES } from "../merge/index.js";
import { KNOWN_KEYS } from "./recipe-schema.js";

const doc = readFileSync(new URL("./FORMAT.md", import.meta.url), "utf8");

describe("FORMAT.md", () => {
  it("documents every builtin method with its inputs", () => {
    for (const method of builtinMethods.values()) {
      const row = doc.split("\n").find((line) => line.startsWith("| `") && line.includes(`\`${method.id}\``));
      expect(row, method.id).toBeDefined();
      for (const input of method.inputs)
        expect(row, `${method.id} input ${input.name}`).toContain(input.name);
    }
  });

  it("documents every field, curve and block rule", () => {
    const fields = [
      ...KNOWN_KEYS.step,
      ...KNOWN_KEYS.output,
      ...KNOWN_KEYS.input,
      ...KNOWN_KEYS.vae,
      ...KNOWN_KEYS.override,
      ...KNOWN_KEYS.lora,
    ];
    for (const field of [...fields, ...CURVE_NAMES, ...BLOCK_RULES]) expect(doc, field).toContain(field);
  });
});
