import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { getLayout } from "../arch/layouts.js";
import { isGyozaError } from "../errors.js";
import { FIXTURE_DIRS } from "../test-support/fixture-dirs.js";
import { isMergedTensorKey, slotOfKey } from "./block-map.js";
import { type BlockRule, type Family, slotsOf } from "./slots.js";

/** The slots of a block list from sd-mecha's model configs (test/fixtures/reference), in file order. */
function blockListSlots(file: string): string[] {
  const config = parse(readFileSync(`${FIXTURE_DIRS.reference}model-configs/${file}`, "utf8")) as {
    components: { blocks: Record<string, unknown> };
  };
  return Object.keys(config.components.blocks);
}

/**
 * Every key of a real layout → its component: the layouts in src/arch are generated from sd-mecha's
 * model configs (`npm run test:corpus` checks them against those files), EMA copies included for SD 1.x.
 */
function referenceKeys(layout: string, withEma: boolean): Map<string, string> {
  return new Map(getLayout(layout, { withEma }).entries.map((entry) => [entry.key, entry.component]));
}

/** An independent statement of DOMAIN.md §3, written from the component a key belongs to. */
function expectedSlot(key: string, component: string, family: Family, rule: BlockRule): string | null {
  const leaf = key.split(".").at(-1)!;
  if (
    !["weight", "bias", "in_proj_weight", "in_proj_bias", "positional_embedding", "text_projection"].includes(
      leaf,
    )
  ) {
    return null;
  }
  if (component === "vae") return rule === "sd-mecha" && family === "sdxl" ? "VAE" : "BASE";
  if (component !== "diffuser") return "BASE";
  const parts = key.split(".");
  const lastOut = family === "sdxl" ? "OUT08" : "OUT11";
  const block = parts[2]!;
  if (block === "time_embed" || block === "label_emb") return rule === "classic" ? "IN00" : "BASE";
  if (block === "out") return lastOut;
  const index = Number(parts[3]).toString().padStart(2, "0");
  if (block === "input_blocks") return `IN${index}`;
  if (block === "middle_block") return "M00";
  if (block === "output_blocks") return `OUT${index}`;
  throw new Error(`unexpected UNet key ${key}`);
}

const cases: { layout: string; family: Family; withEma: boolean }[] = [
  { layout: "sd1-ldm", family: "sd1", withEma: true },
  { layout: "sdxl-sgm", family: "sdxl", withEma: false },
];

describe("slotsOf", () => {
  for (const { file, family } of [
    { file: "sd1-supermerger_blocks.yaml", family: "sd1" as const },
    { file: "sdxl-supermerger_blocks.yaml", family: "sdxl" as const },
  ]) {
    it(`lists the slots of ${file} in its order`, () => {
      expect(blockListSlots(file)).toEqual(slotsOf(family));
    });
  }
});

describe("slotOfKey", () => {
  for (const { layout, family, withEma } of cases) {
    const keys = referenceKeys(layout, withEma);
    for (const rule of ["classic", "sd-mecha"] as const) {
      it(`maps every key of the ${layout} layout to the slot DOMAIN.md gives under the ${rule} rule`, () => {
        const used = new Set<string>();
        let checked = 0;
        for (const [key, component] of keys) {
          const slot = slotOfKey(key, family, rule);
          expect(slot, key).toBe(expectedSlot(key, component, family, rule));
          if (slot) used.add(slot);
          checked++;
        }
        expect(checked).toBe(keys.size);
        const expectedSlots = slotsOf(family).filter((slot) => slot !== "VAE" || rule === "sd-mecha");
        expect([...used].sort()).toEqual([...expectedSlots].sort());
      });
    }
  }

  it("never merges position_ids, EMA copies or scheduler buffers", () => {
    for (const key of [
      "cond_stage_model.transformer.text_model.embeddings.position_ids",
      "model_ema.diffusion_modelinput_blocks00weight",
      "model_ema.decay",
      "alphas_cumprod",
      "conditioner.embedders.1.model.logit_scale",
    ]) {
      expect(isMergedTensorKey(key), key).toBe(false);
      expect(slotOfKey(key, "sd1", "classic"), key).toBeNull();
    }
  });

  it("sends time_embed to IN00 under classic and to BASE under sd-mecha", () => {
    const key = "model.diffusion_model.time_embed.0.weight";
    expect(slotOfKey(key, "sd1", "classic")).toBe("IN00");
    expect(slotOfKey(key, "sd1", "sd-mecha")).toBe("BASE");
  });

  it("sends the final out layer to OUT11 for sd1 and OUT08 for sdxl", () => {
    expect(slotOfKey("model.diffusion_model.out.2.weight", "sd1")).toBe("OUT11");
    expect(slotOfKey("model.diffusion_model.out.2.weight", "sdxl")).toBe("OUT08");
  });

  it("does not mistake to_out for the final out layer", () => {
    const key = "model.diffusion_model.output_blocks.4.1.transformer_blocks.0.attn2.to_out.0.weight";
    expect(slotOfKey(key, "sd1")).toBe("OUT04");
  });

  it("keeps the VAE at BASE for SD1 under sd-mecha and gives SDXL its own VAE slot", () => {
    const key = "first_stage_model.decoder.conv_out.weight";
    expect(slotOfKey(key, "sd1", "sd-mecha")).toBe("BASE");
    expect(slotOfKey(key, "sdxl", "sd-mecha")).toBe("VAE");
    expect(slotOfKey(key, "sdxl", "classic")).toBe("BASE");
  });

  it("rejects an input block index that the family does not have", () => {
    const key = "model.diffusion_model.input_blocks.11.0.emb_layers.1.weight";
    expect(slotOfKey(key, "sd1")).toBe("IN11");
    try {
      slotOfKey(key, "sdxl");
      expect.unreachable();
    } catch (error) {
      expect(isGyozaError(error, "architecture-mismatch")).toBe(true);
    }
  });
});
