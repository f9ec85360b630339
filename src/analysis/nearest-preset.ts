import { builtinPresets, type PresetTable } from "../merge/presets.js";
import type { Family, Slot } from "../merge/slots.js";

/** Distances closer than this are a tie. */
const PRESET_TIE = 1e-9;

export interface NearestPreset {
  readonly name: string;
  /** True when the preset matches with A and B exchanged (α ↦ 1 − α). */
  readonly swapped: boolean;
  /** Root-mean-square difference over the UNet slots. */
  readonly distance: number;
}

/** The classic preset closest to the recovered UNet weights (slots with an α only). */
export function nearestPreset(
  slots: readonly { slot: Slot; alpha: number | null }[],
  family: Family,
  presets: ReadonlyMap<Family, PresetTable> = builtinPresets,
): NearestPreset | null {
  const unet = slots.filter((s) => s.slot !== "BASE");
  let best: NearestPreset | null = null;
  for (const preset of presets.get(family)?.values() ?? []) {
    for (const swapped of [false, true]) {
      let sum = 0;
      let count = 0;
      unet.forEach((s, i) => {
        if (s.alpha === null) return;
        const value = swapped ? 1 - preset.unet[i]! : preset.unet[i]!;
        sum += (s.alpha - value) ** 2;
        count++;
      });
      if (count === 0) continue;
      const distance = Math.sqrt(sum / count);
      // On a tie (COSINE is exactly 1 − REVERSE_COSINE) the unswapped reading wins.
      const tie = best !== null && Math.abs(distance - best.distance) <= PRESET_TIE;
      if (!best || distance < best.distance - PRESET_TIE || (tie && best.swapped && !swapped))
        best = { name: preset.name, swapped, distance };
    }
  }
  return best;
}
