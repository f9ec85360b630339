/**
 * Block-weight slots: the named places a per-block weight applies to (DOMAIN.md §3).
 * SD 2.x uses the "sd1" family: its UNet has the same 12 input / 1 middle / 12 output blocks.
 */
export type Family = "sd1" | "sdxl";
export type BlockRule = "classic" | "sd-mecha";
export type Slot = string;

export const FAMILIES: readonly Family[] = ["sd1", "sdxl"];
export const BLOCK_RULES: readonly BlockRule[] = ["classic", "sd-mecha"];

/** UNet block counts per family: the only thing that differs between the slot lists. */
const UNET_BLOCKS: Readonly<Record<Family, { input: number; output: number }>> = {
  sd1: { input: 12, output: 12 },
  sdxl: { input: 9, output: 9 },
};

/** `IN` + 4 → `IN04`: the slot name of a numbered block. */
export function numberedSlotName(prefix: "IN" | "OUT", index: number): Slot {
  return `${prefix}${String(index).padStart(2, "0")}`;
}

/** The UNet slots in preset order: IN00.., M00, OUT00.. (25 for sd1, 19 for sdxl). */
export function unetSlotsOf(family: Family): readonly Slot[] {
  const { input, output } = UNET_BLOCKS[family];
  return [
    ...Array.from({ length: input }, (_, i) => numberedSlotName("IN", i)),
    "M00",
    ...Array.from({ length: output }, (_, i) => numberedSlotName("OUT", i)),
  ];
}

/** Every slot a weight vector can address: BASE first, the UNet slots, and VAE for SDXL (sd-mecha's extra slot). */
export function slotsOf(family: Family): readonly Slot[] {
  return family === "sdxl" ? ["BASE", ...unetSlotsOf(family), "VAE"] : ["BASE", ...unetSlotsOf(family)];
}

export function inputBlockCount(family: Family): number {
  return UNET_BLOCKS[family].input;
}

export function outputBlockCount(family: Family): number {
  return UNET_BLOCKS[family].output;
}
