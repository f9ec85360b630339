import { createHash } from "node:crypto";
import { readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { runRecipe } from "./run-recipe.js";
import { mergeDate } from "./source-date.js";

let dir = "";
useTempDirWithHashCache("gyoza-source-date-", (path) => {
  dir = path;
});
const saved = process.env.SOURCE_DATE_EPOCH;
afterEach(() => {
  if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
  else process.env.SOURCE_DATE_EPOCH = saved;
});

describe("mergeDate", () => {
  it("is SOURCE_DATE_EPOCH when set, now when not", () => {
    expect(mergeDate({ SOURCE_DATE_EPOCH: "1700000000" }).toISOString()).toBe("2023-11-14T22:13:20.000Z");
    expect(mergeDate({ SOURCE_DATE_EPOCH: "0" }).toISOString()).toBe("1970-01-01T00:00:00.000Z");
    expect(Math.abs(mergeDate({}).getTime() - Date.now())).toBeLessThan(5000);
    expect(Math.abs(mergeDate({ SOURCE_DATE_EPOCH: "" }).getTime() - Date.now())).toBeLessThan(5000);
  });

  it.each(["-1", "1.5", "1e9", " 17", "yesterday", "9999999999999999"])(
    "refuses a malformed SOURCE_DATE_EPOCH (%s) instead of recording a wrong date",
    (value) => {
      expect(() => mergeDate({ SOURCE_DATE_EPOCH: value })).toThrow(/SOURCE_DATE_EPOCH=.* is not a date/);
    },
  );
});

describe("a merge with SOURCE_DATE_EPOCH", () => {
  it("gives the same bytes (the same AutoV2) each time the same recipe is merged, with that date recorded", async () => {
    const a = join(dir, "a.safetensors");
    const b = join(dir, "b.safetensors");
    await writeSyntheticCheckpoint(a, { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: 1 });
    await writeSyntheticCheckpoint(b, { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: 2 });
    const output = join(dir, "mix.safetensors");
    const recipe = recipeFromData(
      {
        gyoza: 1,
        inputs: { a: { path: a }, b: { path: b } },
        steps: { mix: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.3 } },
        output: { path: output, metadata: "hashes" },
      },
      { sourceName: "test" },
    );
    const sha256 = async (path: string) =>
      createHash("sha256")
        .update(await readFile(path))
        .digest("hex");
    process.env.SOURCE_DATE_EPOCH = "1700000000";
    await runRecipe(recipe, { hashCacheDir: false });
    await rename(output, join(dir, "first.safetensors"));
    await new Promise((done) => setTimeout(done, 5)); // another millisecond: "now" would differ
    await runRecipe(recipe, { hashCacheDir: false });
    expect(await sha256(output)).toBe(await sha256(join(dir, "first.safetensors")));
    const checkpoint = await openCheckpoint(output);
    try {
      expect(checkpoint.metadata["modelspec.date"]).toBe("2023-11-14T22:13:20.000Z");
    } finally {
      await checkpoint.close();
    }
  });
});
