/** Pure helpers of the block-weight curve editor (no DOM): layout over the U, presets, the weight string. */

export interface Point {
  x: number;
  y: number;
}

/** Where each slot sits: BASE apart on the left, IN blocks going down, M at the bottom, OUT going up. */
export function slotGroup(slot: string): "base" | "in" | "mid" | "out" | "other" {
  if (slot === "BASE") return "base";
  if (slot.startsWith("IN")) return "in";
  if (slot.startsWith("M")) return "mid";
  if (slot.startsWith("OUT")) return "out";
  return "other";
}

/**
 * The U shape's depth for slot i (0 at the top, 1 at the bottom): down blocks descend, the middle
 * block is lowest, up blocks ascend. Used for the faint guide line the handles are drawn over.
 */
export function uDepth(slots: readonly string[], index: number): number {
  const ins = slots.filter((slot) => slotGroup(slot) === "in").length;
  const outs = slots.filter((slot) => slotGroup(slot) === "out").length;
  const slot = slots[index] ?? "";
  const group = slotGroup(slot);
  if (group === "base") return 0;
  if (group === "mid") return 1;
  const position = slots.slice(0, index).filter((s) => slotGroup(s) === group).length;
  if (group === "in") return ins <= 1 ? 0.5 : (position / ins) * 0.9 + 0.05;
  if (group === "out") return outs <= 1 ? 0.5 : (1 - (position + 1) / outs) * 0.9 + 0.05;
  return 0.5;
}

export function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/** Rounded to 3 decimals, as the weight string shows them. */
export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** The A1111/supermerger string: comma-separated, no trailing comma. */
export function weightString(weights: readonly number[]): string {
  return weights.map((value) => String(round3(value))).join(",");
}

export function l2(a: readonly number[], b: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
  return Math.sqrt(sum);
}

export interface NamedWeights {
  name: string;
  weights: number[];
}

/** The preset nearest (L2) to `weights` among those of the same length; undefined when none fits. */
export function nearestPreset(
  weights: readonly number[],
  presets: readonly NamedWeights[],
): { name: string; distance: number } | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const preset of presets) {
    if (preset.weights.length !== weights.length) continue;
    const distance = l2(weights, preset.weights);
    if (!best || distance < best.distance) best = { name: preset.name, distance };
  }
  return best;
}

/** A preset's name when `weights` equals it (to 3 decimals), so recipes stay readable. */
export function exactPreset(
  weights: readonly number[],
  presets: readonly NamedWeights[],
): string | undefined {
  const near = nearestPreset(weights, presets);
  return near && near.distance < 5e-4 ? near.name : undefined;
}

/** A compact axis label: BASE → B, IN04 → 4, M00 → M, OUT11 → 11 (the group shows in the colour and legend). */
export function shortSlot(slot: string): string {
  if (slot === "BASE") return "B";
  if (slot.startsWith("M")) return "M";
  const number = /(\d+)$/.exec(slot)?.[1];
  return number === undefined ? slot : String(Number(number));
}
