import sd1 from "./block-layouts/sd1.json" with { type: "json" };
import sd2 from "./block-layouts/sd2.json" with { type: "json" };
import sdxl from "./block-layouts/sdxl.json" with { type: "json" };

/**
 * Block layouts as data (./block-layouts/*.json), like the architectures: per family, how many
 * numbered UNet blocks it has, which extra slots (SDXL's VAE), which preset table it uses, how
 * vectors written for another layout translate, and each key → slot rule (DOMAIN.md §3: the tools
 * disagree on time_embed, label_emb and the VAE). Adding a layout is one JSON file here and a test
 * row; nothing else changes.
 */
export interface BlockLayout {
  readonly id: string;
  readonly name: string;
  /** Where the numbers come from. */
  readonly source: string;
  readonly inputBlocks: number;
  readonly outputBlocks: number;
  /** Slots after the UNet's (sd-mecha's SDXL VAE slot). */
  readonly extraSlots: readonly string[];
  /** The layout whose preset table applies (SD 2.x uses SD 1.x's). */
  readonly presets: string;
  /** supermerger's translation of another layout's UNet vector: the index ranges kept, in order. */
  readonly translateFrom?: {
    readonly layout: string;
    readonly ranges: readonly (readonly [number, number])[];
  };
  readonly rules: Readonly<Record<string, BlockRuleData>>;
}

/** One key → slot rule of a layout. */
export interface BlockRuleData {
  /** Checked in order on UNet keys before the numbered blocks; the first match wins. */
  readonly unetSpecial: readonly { readonly contains: string; readonly slot: string }[];
  /** Keys outside the UNet whose prefix sends them somewhere other than BASE. */
  readonly outsideUnet: readonly { readonly prefix: string; readonly slot: string }[];
}

const LAYOUTS = [sd1, sd2, sdxl] as unknown as readonly BlockLayout[];

/** Every block layout by family id. */
export const BLOCK_LAYOUTS: ReadonlyMap<string, BlockLayout> = new Map(
  LAYOUTS.map((layout) => [layout.id, layout]),
);
