import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { getLayout } from "../arch/layouts.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { runCli } from "../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { BLOCK_LAYOUTS } from "./block-layouts.js";
import { slotOfKey } from "./block-map.js";
import { builtinPresets } from "./presets.js";
import { BLOCK_RULES, FAMILIES, type Family, slotsOf, unetSlotsOf } from "./slots.js";
import { resolveWeights } from "./weights.js";

let dir: string;
useTempDirWithHashCache("gyoza-block-layouts-", (path) => {
  dir = path;
});

describe("block layouts as data", () => {
  it("has one data file per family, each complete: slots, both block rules, a preset table", () => {
    expect([...BLOCK_LAYOUTS.keys()].sort()).toEqual([...FAMILIES].sort());
    for (const family of FAMILIES) {
      const layout = BLOCK_LAYOUTS.get(family)!;
      expect(slotsOf(family)).toHaveLength(
        1 + layout.inputBlocks + 1 + layout.outputBlocks + layout.extraSlots.length,
      );
      expect(builtinPresets.get(family)?.get("COSINE")?.unet).toHaveLength(unetSlotsOf(family).length);
      for (const rule of BLOCK_RULES) {
        const data = layout.rules[rule]!;
        for (const entry of [...data.unetSpecial, ...data.outsideUnet])
          expect(slotsOf(family), `${family} ${rule}`).toContain(entry.slot);
      }
    }
  });

  it.each([
    ["sd1", "sd1-ldm", 26],
    ["sd2", "sd2-ldm", 26],
    ["sdxl", "sdxl-sgm", 21],
  ] as const)(
    "gives every merged key of the %s reference layout a slot (%s, %i slots)",
    (family, layout, slots) => {
      expect(slotsOf(family as Family)).toHaveLength(slots);
      const seen = new Set<string>();
      for (const key of getLayout(layout).byKey.keys()) {
        const slot = slotOfKey(key, family as Family);
        if (slot !== null) seen.add(slot);
      }
      expect(seen).toEqual(new Set(unetSlotsOf(family as Family).concat("BASE")));
    },
  );

  it("gives SD 2.x the SD 1.x presets and 25/26-value vectors, but not SDXL's translation", () => {
    expect(resolveWeights("COSINE", "sd2")).toEqual(resolveWeights("COSINE", "sd1"));
    expect(resolveWeights(new Array(26).fill(0.5), "sd2").OUT11).toBe(0.5);
    expect(() => resolveWeights(new Array(20).fill(0.5), "sd2")).toThrow(
      /sd2 weight vector has 25 \(UNet\), 26 \(BASE first\) values, got 20/,
    );
    expect(resolveWeights(new Array(26).fill(0.25), "sdxl").OUT08).toBe(0.25);
  });

  it("refuses to merge SD 1.x with SD 2.x before reading a tensor, naming both", async () => {
    const sd1 = join(dir, "sd1.safetensors");
    const sd2 = join(dir, "sd2.safetensors");
    await writeSyntheticCheckpoint(sd1, { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: 1 });
    await writeSyntheticCheckpoint(sd2, { layout: "sd2-ldm", size: "micro", dtype: "F16", seed: 2 });
    const { code, stderr } = await runCli("merge", sd1, sd2, "-o", join(dir, "out.safetensors"));
    expect(code).toBe(1);
    expect(stderr).toMatch(/cannot merge "a" \(Stable Diffusion 1\.x\) with "b" \(Stable Diffusion 2\.x/);
  });
});
