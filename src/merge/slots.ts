import { BLOCK_LAYOUTS, type BlockLayout } from "./block-layouts.js";

/**
 * Block-weight slots: the named places a per-block weight applies to (DOMAIN.md §3), from the
 * block layouts' data. A family is a block layout: SD 1.x, SD 2.x (same blocks, its own
 * architecture) and SDXL.
 */
export type Family = "sd1" | "sd2" | "sdxl";
export type BlockRule = "classic" | "sd-mecha";
export type Slot = string;

export const FAMILIES: readonly Family[] = ["sd1", "sd2", "sdxl"];
export const BLOCK_RULES: readonly BlockRule[] = ["classic", "sd-mecha"];

/** True for the families block weights apply to. */
export function isFamily(value: string): value is Family {
  return (FAMILIES as readonly string[]).includes(value);
}

export function blockLayoutOf(family: Family): BlockLayout {
  return BLOCK_LAYOUTS.get(family)!;
}

/** `IN` + 4 → `IN04`: the slot name of a numbered block. */
export function numberedSlotName(prefix: "IN" | "OUT", index: number): Slot {
  return `${prefix}${String(index).padStart(2, "0")}`;
}

/** The UNet slots in preset order: IN00.., M00, OUT00.. (25 for sd1/sd2, 19 for sdxl). */
export function unetSlotsOf(family: Family): readonly Slot[] {
  const { inputBlocks, outputBlocks } = blockLayoutOf(family);
  return [
    ...Array.from({ length: inputBlocks }, (_, i) => numberedSlotName("IN", i)),
    "M00",
    ...Array.from({ length: outputBlocks }, (_, i) => numberedSlotName("OUT", i)),
  ];
}

/** Every slot a weight vector can address: BASE first, the UNet slots, then the layout's extra slots (SDXL's VAE). */
export function slotsOf(family: Family): readonly Slot[] {
  return ["BASE", ...unetSlotsOf(family), ...blockLayoutOf(family).extraSlots];
}

export function inputBlockCount(family: Family): number {
  return blockLayoutOf(family).inputBlocks;
}

export function outputBlockCount(family: Family): number {
  return blockLayoutOf(family).outputBlocks;
}
