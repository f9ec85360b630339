import { unknownIdError } from "../errors.js";
import sd1Table from "./presets/mbw-presets-sd1-26-base-first.json" with { type: "json" };
import sdxlTable from "./presets/mbw-presets-sdxl-20-base-first.json" with { type: "json" };
import { type Family, unetSlotsOf } from "./slots.js";

/**
 * The classic block-weight presets (MBW tool, supermerger): BASE plus one value per UNet slot.
 * Stored as data in ./presets (copied from shared/reference/presets, BASE first). SDXL uses its own
 * recomputed table; a preset only defined for SD1 reaches SDXL through supermerger's translation.
 */
export interface Preset {
  readonly name: string;
  readonly family: Family;
  /** Weight of the non-UNet tensors (text encoder, VAE): 0 in every table except ALL_B. */
  readonly base: number;
  /** One value per UNet slot, in `unetSlotsOf(family)` order. */
  readonly unet: readonly number[];
  /** True when the SDXL values come from translating the SD1 preset. */
  readonly translated: boolean;
}

export type PresetTable = ReadonlyMap<string, Preset>;

/**
 * supermerger's SD1 → SDXL translation on the 25 UNet values: IN00–IN08, M00, OUT00–OUT08,
 * i.e. `w[0:9] + w[12:22]`.
 */
export function translateSd1ToSdxl(unet25: readonly number[]): number[] {
  return [...unet25.slice(0, 9), ...unet25.slice(12, 22)];
}

function tableFrom(family: Family, raw: Record<string, number[]>): Map<string, Preset> {
  const table = new Map<string, Preset>();
  for (const [name, values] of Object.entries(raw)) {
    table.set(name, { name, family, base: values[0]!, unet: values.slice(1), translated: false });
  }
  return table;
}

function buildBuiltinPresets(): ReadonlyMap<Family, PresetTable> {
  const sd1 = tableFrom("sd1", sd1Table);
  const sdxl = tableFrom("sdxl", sdxlTable);
  for (const preset of sd1.values()) {
    if (sdxl.has(preset.name)) continue;
    sdxl.set(preset.name, {
      ...preset,
      family: "sdxl",
      unet: translateSd1ToSdxl(preset.unet),
      translated: true,
    });
  }
  // SD 2.x has the SD 1.x blocks, and supermerger gives it the SD 1.x presets.
  const sd2 = new Map([...sd1].map(([name, preset]) => [name, { ...preset, family: "sd2" as const }]));
  for (const [family, table] of [["sd1", sd1] as const, ["sd2", sd2] as const, ["sdxl", sdxl] as const]) {
    const expected = unetSlotsOf(family).length;
    for (const preset of table.values()) {
      if (preset.unet.length !== expected)
        throw new Error(`preset ${preset.name} has ${preset.unet.length} values`);
    }
  }
  return new Map([
    ["sd1", sd1],
    ["sd2", sd2],
    ["sdxl", sdxl],
  ]);
}

/** Every builtin preset, by family then name. A value to pass around, not a registry to mutate. */
export const builtinPresets: ReadonlyMap<Family, PresetTable> = buildBuiltinPresets();

/** The preset with this name (exact, or case-insensitive when unambiguous); unknown-id error with "did you mean". */
export function findPreset(
  name: string,
  family: Family,
  presets: ReadonlyMap<Family, PresetTable> = builtinPresets,
): Preset {
  const table = presets.get(family) ?? new Map<string, Preset>();
  const exact = table.get(name);
  if (exact) return exact;
  const folded = [...table.values()].filter((preset) => preset.name.toLowerCase() === name.toLowerCase());
  if (folded.length === 1) return folded[0]!;
  throw unknownIdError("preset", name, table.keys());
}
