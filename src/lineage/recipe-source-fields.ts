import type { ElementalOverride } from "../merge/index.js";

/** Records a setting that is not carried over: field, why, and whether the result changes. */
export type LostField = (field: string, reason: string, changesResult: boolean) => void;

/** A1111 settings beyond the method: what gyoza cannot do the same way (modules/extras.py run_modelmerger). */
export function readA1111Extras(source: Record<string, unknown>, lost: LostField): void {
  const discard = String(source.discard_weights ?? "");
  if (discard && discard !== "model_ema")
    lost(
      "discard_weights",
      "a regular expression of keys to drop: gyoza prune drops EMA and junk keys only",
      true,
    );
  if (source.save_as_half !== true)
    lost(
      "save_as_half",
      "A1111 keeps the inputs' precision when off; gyoza writes fp32 (set output.dtype)",
      false,
    );
  if (source.is_inpainting === true || source.is_instruct_pix2pix === true)
    lost(
      "is_inpainting",
      "A1111 adapts the 9- or 8-channel input layer when merging those models; gyoza does not",
      true,
    );
}

/**
 * supermerger's elemental text: "BLOCKS:ELEMENTS:RATIO" rules, one per line or comma-separated,
 * later ones winning (https://github.com/hako-mikan/sd-webui-supermerger/blob/main/elemental_en.md):
 * the same semantics as gyoza's overrides.
 */
export function readElemental(value: unknown, overrides: ElementalOverride[], lost: LostField): void {
  if (!isSet(value)) return;
  for (const rule of String(value)
    .split(/[\n,]/)
    .map((part) => part.trim())
    .filter(Boolean)) {
    const parts = rule.split(":");
    const ratio = Number(parts[2]);
    if (parts.length !== 3 || parts[2]!.trim() === "" || !Number.isFinite(ratio)) {
      lost("elemental_merge", `the rule "${rule}" is not BLOCKS:ELEMENTS:RATIO`, true);
      continue;
    }
    // "If left blank, all Bloks will be applied" (supermerger elemental_en.md)
    overrides.push({ block: parts[0]!.trim() || "*", pattern: parts[1]!.trim(), value: ratio });
  }
}

export function parseVector(value: unknown): number[] | undefined {
  if (typeof value !== "string" && !Array.isArray(value)) return undefined;
  const items = typeof value === "string" ? value.split(",") : value;
  const numbers = items.map((item) => Number(typeof item === "string" ? item.trim() : item));
  return numbers.length > 0 && numbers.every(Number.isFinite) ? numbers : undefined;
}

export const isSet = (value: unknown) =>
  value !== undefined && value !== null && value !== "" && !(Array.isArray(value) && value.length === 0);
