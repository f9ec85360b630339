import { blockOf } from "../arch/lora/inspect-lora.js";
import { GyozaError, unknownIdError } from "../errors.js";
import data from "./presets/lora-block-weights.json" with { type: "json" };
import type { Family } from "./slots.js";
import { isDecimal } from "./weight-text.js";

/**
 * "LoRA Block Weight" (hako-mikan's extension, and supermerger's `name:ratio:weights`): how much of a
 * LoRA each UNet block takes. A list names the slots of one of four layouts (12 or 20 values for
 * SDXL, 17 or 26 for SD 1.x/2.x, BASE first, the text encoders' weight), or is a preset name; the
 * slots a short list leaves out take 0, and UNet keys outside every block (time_embed, out.*) take 1,
 * as the extension does (src/merge/presets/lora-block-weights.json, with the source of each list).
 */
export type LoraLayoutSize = 12 | 17 | 20 | 26;

interface LayoutData {
  readonly families: readonly Family[];
  readonly slots: readonly string[];
}

const LAYOUTS = data.layouts as unknown as Readonly<Record<`${LoraLayoutSize}`, LayoutData>>;
const PRESETS = data.presets as Readonly<Record<string, readonly number[]>>;
const SIZES: readonly LoraLayoutSize[] = [12, 17, 20, 26];

/** A LoRA's block weights as resolved from what the user wrote. */
export interface LoraBlockWeights {
  /** What was written: the list, a preset name, or "ALL" when nothing was (every block 1). */
  readonly text: string;
  /** The layout the values name; null when every key takes 1. */
  readonly layout: LoraLayoutSize | null;
  /** Slot → weight, for the slots the layout names. */
  readonly values: Readonly<Record<string, number>>;
}

/** Every block 1: what a LoRA without block weights gets. */
export const FULL_LORA_WEIGHTS: LoraBlockWeights = { text: "ALL", layout: null, values: {} };

/** The slot names of a layout, in the order its values are written. */
export function loraLayoutSlots(size: LoraLayoutSize): readonly string[] {
  return LAYOUTS[`${size}`].slots;
}

/** LBW's default presets by name (17 values each). */
export function loraWeightPresets(): ReadonlyMap<string, readonly number[]> {
  return new Map(Object.entries(PRESETS));
}

/** A decimal number as people type it (the same rule as block weights in weight-text.ts). */

export interface LoraWeightsOptions {
  /** Where the weights were given, for messages: `--lora detail.safetensors`, `steps.tuned.loras[0].weights`. */
  where?: string;
  /** "usage" for the command line (the default), "recipe" inside a recipe. */
  code?: "usage" | "recipe";
}

/**
 * LBW's block weights from a list of numbers, comma-separated text (`1,0,0,…`) or a preset name
 * (`OUTALL`); undefined means every block 1. A stray comma must never shift every block by one, so
 * every field must be a plain number and the count must be a layout's; errors name the field, its
 * position and the slot it would have set.
 */
export function parseLoraBlockWeights(
  spec: string | readonly number[] | undefined,
  options: LoraWeightsOptions = {},
): LoraBlockWeights {
  const where = options.where ?? "weights";
  const code = options.code ?? "usage";
  if (spec === undefined) return FULL_LORA_WEIGHTS;
  if (Array.isArray(spec)) return fromValues(spec as readonly number[], spec.join(","), where, code);
  const text = (spec as string).trim();
  if (text === "")
    throw new GyozaError(code, "the block weights are empty", { path: where, fix: WEIGHTS_FIX });
  if (text.includes(",")) {
    const fields = text.split(",").map((field) => field.trim());
    fields.forEach((field, i) => {
      if (field === "") throw emptyField(fields, i, where, code);
      if (!isDecimal(field)) {
        const slot = layoutOf(fields.length)?.slots[i];
        throw new GyozaError(
          code,
          `block weight ${i + 1} "${field}" is not a number${slot ? ` (it would set ${slot})` : ""}`,
          {
            path: where,
            fix: "block weights are plain decimal numbers such as 0.5 (LBW's random R, U and X entries are not reproducible)",
          },
        );
      }
    });
    return fromValues(fields.map(Number), fields.join(","), where, code);
  }
  if (isDecimal(text)) {
    throw new GyozaError(code, `one number (${text}) is not a block-weight list`, {
      path: where,
      fix: `the ratio scales every block; give ${SIZES.join(", ")} comma-separated values or a preset (${[...Object.keys(PRESETS)].join(", ")})`,
    });
  }
  const name = Object.keys(PRESETS).find((preset) => preset.toLowerCase() === text.toLowerCase());
  if (!name) {
    const error = unknownIdError("LoRA block-weight preset", text, Object.keys(PRESETS));
    throw new GyozaError(code, error.message, { path: where, fix: error.fix });
  }
  return { ...fromValues(PRESETS[name]!, name, where, code), text: name };
}

function fromValues(
  values: readonly number[],
  text: string,
  where: string,
  code: "usage" | "recipe",
): LoraBlockWeights {
  const layout = layoutOf(values.length);
  if (!layout) {
    throw new GyozaError(code, `${values.length} block weights`, { path: where, fix: WEIGHTS_FIX });
  }
  const bad = values.findIndex((value) => !Number.isFinite(value));
  if (bad >= 0)
    throw new GyozaError(code, `block weight ${bad + 1} (${layout.slots[bad]}) is not a finite number`, {
      path: where,
    });
  return {
    text,
    layout: values.length as LoraLayoutSize,
    values: Object.fromEntries(layout.slots.map((slot, i) => [slot, values[i]!])),
  };
}

function layoutOf(count: number): LayoutData | undefined {
  return (SIZES as readonly number[]).includes(count) ? LAYOUTS[`${count as LoraLayoutSize}`] : undefined;
}

function emptyField(fields: readonly string[], index: number, where: string, code: "usage" | "recipe") {
  const meant = layoutOf(fields.length - 1)?.slots;
  const last = index === fields.length - 1;
  const context = meant ? (index === 0 ? ` (before ${meant[0]})` : ` (after ${meant[index - 1]})`) : "";
  return new GyozaError(code, `block weight ${index + 1} is empty${context}`, {
    path: where,
    fix: last
      ? "remove the trailing comma"
      : index === 0
        ? "remove the leading comma"
        : "put a number between the two commas, or remove one of them",
  });
}

const WEIGHTS_FIX = `give ${SIZES.join(", ")} comma-separated values (17 or 26 for SD 1.x/2.x, 12 or 20 for SDXL, BASE first) or a preset name (${Object.keys(PRESETS).join(", ")})`;

/** Refuses weights written for another model's blocks (17 values for SDXL, 12 for SD 1.x). */
export function checkLoraWeightsFit(
  weights: LoraBlockWeights,
  family: Family,
  options: LoraWeightsOptions = {},
): void {
  if (weights.layout === null) return;
  const layout = LAYOUTS[`${weights.layout}`];
  if (layout.families.includes(family)) return;
  const fits = SIZES.filter((size) => LAYOUTS[`${size}`].families.includes(family));
  throw new GyozaError(
    options.code ?? "usage",
    `${weights.layout} block weights name ${layout.families.includes("sdxl") ? "SDXL" : "SD 1.x/2.x"} blocks, not this ${family === "sdxl" ? "SDXL" : "SD 1.x/2.x"} model's`,
    { path: options.where ?? "weights", fix: `give ${fits.join(" or ")} values for this model` },
  );
}

/**
 * The slot whose block weight a changed key takes, as LBW tells it by name: BASE for the text
 * encoders, IN00…, M00, OUT00… for the UNet blocks, null for UNet keys outside every block
 * (time_embed, label_emb, out.*), which take 1.
 */
export function loraSlotOfKey(key: string): string | null {
  if (!key.startsWith("model.diffusion_model.")) return "BASE";
  const block = blockOf(key);
  return block === "unet-other" ? null : block;
}

/** The block weight of a slot: 1 outside every block, 0 for a slot the layout does not name. */
export function loraBlockWeightOf(weights: LoraBlockWeights, slot: string | null): number {
  if (slot === null || weights.layout === null) return 1;
  return weights.values[slot] ?? 0;
}
