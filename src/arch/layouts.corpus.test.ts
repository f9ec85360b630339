import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { FIXTURE_DIRS } from "../test-support/fixture-dirs.js";
import { getLayout, type LayoutEntry } from "./layouts.js";

/** sd-mecha's dtype names → ours, as scripts/generate-layouts.mjs maps them. */
const DTYPES: Record<string, string> = {
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
  int64: "I64",
  int32: "I32",
};

interface ConfigEntry {
  shape: number[];
  dtype: string;
  optional?: boolean;
  aliases?: string[];
}

function configEntries(id: string): LayoutEntry[] {
  const text = readFileSync(`${FIXTURE_DIRS.reference}model-configs/${id}.yaml`, "utf8");
  const config = parse(text) as { components: Record<string, Record<string, ConfigEntry>> };
  return Object.entries(config.components).flatMap(([component, entries]) =>
    Object.entries(entries).map(([key, entry]) => ({
      key,
      shape: entry.shape,
      dtype: (DTYPES[entry.dtype] ?? entry.dtype) as LayoutEntry["dtype"],
      component,
      optional: entry.optional === true,
      // layouts.ts derives the EMA copies from the UNet keys and gives them none of the older
      // names sd-mecha lists for them (`model_ema.input_blocks00bias`).
      aliases: component === "ema" ? [] : (entry.aliases ?? []),
    })),
  );
}

const byKey = (a: LayoutEntry, b: LayoutEntry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

describe("the layouts generated into src/arch/layouts", () => {
  // The tests of block-map and the recipe reference check take their keys from these layouts.
  it.each([
    ["sd1-ldm", true],
    ["sdxl-sgm", false],
  ] as const)(
    "hold every key, component, shape, dtype and alias of sd-mecha's %s (EMA: %s)",
    (id, withEma) => {
      const generated = getLayout(id, { withEma }).entries.map((entry) => ({ ...entry }));
      expect(generated.sort(byKey)).toEqual(configEntries(id).sort(byKey));
    },
  );
});
