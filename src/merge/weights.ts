import { didYouMean, GyozaError, isGyozaError } from "../errors.js";
import { slotOfKey } from "./block-map.js";
import { type CompiledOverride, compileOverrides, type ElementalOverride, overrideFor } from "./elemental.js";
import { builtinPresets, findPreset, type PresetTable } from "./presets.js";
import { type BlockRule, blockLayoutOf, type Family, type Slot, unetSlotsOf } from "./slots.js";
import { CURVE_NAMES, type CurveName, curveValues } from "./weight-curves.js";
import { parseWeightText } from "./weight-text.js";

/**
 * How a recipe or the CLI states a weight:
 * - a scalar: every slot, BASE included;
 * - a vector: the UNet slots (25 for SD1, 19 for SDXL), BASE first (26 / 20), or SDXL with a
 *   trailing VAE (21); an SD1-sized vector given for SDXL is translated (`w[0:9] + w[12:22]`);
 * - a preset name (`COSINE`), or `{preset, base}`; `{value, base}` and `{values, base}` give a
 *   scalar or vector another BASE (what the CLI's `--base` builds);
 * - a curve `{curve: cosine | reverse_cosine | smoothstep | reverse_smoothstep | linear | reverse_linear, min, max, base}`.
 * A vector without BASE, a preset and a curve leave BASE at 0 (A's text encoder and VAE) unless
 * `base` says otherwise, as the classic preset tables do.
 */
export type WeightSpec =
  | number
  | readonly number[]
  | string
  | { readonly preset: string; readonly base?: number }
  | { readonly value: number; readonly base?: number }
  | { readonly values: readonly number[]; readonly base?: number }
  | { readonly curve: CurveName; readonly min?: number; readonly max?: number; readonly base?: number };

/** A weight for every slot of a family. */
export type SlotWeights = Readonly<Record<Slot, number>>;

export interface ResolveOptions {
  /** Overrides BASE (the CLI's `--base`). */
  base?: number;
  presets?: ReadonlyMap<Family, PresetTable>;
  /** Where the spec sits in the recipe, for error messages. */
  path?: string;
}

export function resolveWeights(spec: WeightSpec, family: Family, options: ResolveOptions = {}): SlotWeights {
  const path = options.path ?? "alpha";
  const { base, unet, vae } = unetAndBase(spec, family, options, path);
  const finalBase = options.base ?? base;
  const weights: Record<Slot, number> = { BASE: finalBase };
  unetSlotsOf(family).forEach((slot, i) => {
    weights[slot] = unet[i]!;
  });
  for (const slot of blockLayoutOf(family).extraSlots) weights[slot] = vae ?? finalBase;
  return weights;
}

function unetAndBase(
  spec: WeightSpec,
  family: Family,
  options: ResolveOptions,
  path: string,
): { base: number; unet: readonly number[]; vae?: number } {
  const unetCount = unetSlotsOf(family).length;
  if (typeof spec === "number") {
    checkFinite(spec, path);
    return { base: spec, unet: new Array(unetCount).fill(spec), vae: spec };
  }
  if (typeof spec === "string") {
    // A recipe may write a vector or a number as supermerger's text: `alpha: "1,0.9,…"`.
    const parsed = parseWeightText(spec, { where: path, code: "recipe" });
    if (typeof parsed !== "string") return unetAndBase(parsed, family, options, path);
    return fromPreset(parsed, undefined, family, options, path);
  }
  if (isVector(spec)) return fromVector(spec, family, path);
  if (typeof spec !== "object" || spec === null) {
    throw new GyozaError("recipe", "a weight is a number, a list of numbers, a preset name or a curve", {
      path,
    });
  }
  checkSpecFields(spec, path);
  if ("preset" in spec) return fromPreset(spec.preset, spec.base, family, options, path);
  if ("value" in spec) {
    const scalar = unetAndBase(spec.value, family, options, `${path}.value`);
    return spec.base === undefined ? scalar : { ...scalar, base: spec.base, vae: spec.base };
  }
  if ("values" in spec) {
    const vector = fromVector(spec.values, family, `${path}.values`);
    return spec.base === undefined ? vector : { ...vector, base: spec.base };
  }
  if ("curve" in spec) {
    if (!CURVE_NAMES.includes(spec.curve)) {
      throw new GyozaError("recipe", `unknown curve "${spec.curve}"`, {
        path: `${path}.curve`,
        fix: `curves: ${CURVE_NAMES.join(", ")}`,
      });
    }
    return { base: spec.base ?? 0, unet: curveValues(spec.curve, unetCount, spec.min ?? 0, spec.max ?? 1) };
  }
  throw new GyozaError("recipe", "a weight is a number, a list of numbers, a preset name or a curve", {
    path,
  });
}

function fromPreset(
  name: string,
  base: number | undefined,
  family: Family,
  options: ResolveOptions,
  path: string,
): { base: number; unet: readonly number[] } {
  try {
    const preset = findPreset(name, family, options.presets ?? builtinPresets);
    return { base: base ?? preset.base, unet: preset.unet };
  } catch (error) {
    if (!isGyozaError(error, "unknown-id")) throw error;
    throw new GyozaError("recipe", error.message, { path, fix: error.fix });
  }
}

function fromVector(
  values: readonly number[],
  family: Family,
  path: string,
): { base: number; unet: readonly number[]; vae?: number } {
  values.forEach((value, i) => {
    checkFinite(value, `${path}[${i}]`);
  });
  const n = values.length;
  const layout = blockLayoutOf(family);
  const unet = unetSlotsOf(family).length;
  const extras = layout.extraSlots.length;
  if (n === unet) return { base: 0, unet: values };
  if (n === unet + 1) return { base: values[0]!, unet: values.slice(1) };
  if (extras > 0 && n === unet + 1 + extras)
    return { base: values[0]!, unet: values.slice(1, unet + 1), vae: values[unet + 1]! };
  const from = layout.translateFrom;
  const fromCount = from ? unetSlotsOf(from.layout as Family).length : -1;
  if (from && n === fromCount) return { base: 0, unet: translateVector(values, from.ranges) };
  if (from && n === fromCount + 1)
    return { base: values[0]!, unet: translateVector(values.slice(1), from.ranges) };
  const sizes = [
    `${unet} (UNet)`,
    `${unet + 1} (BASE first)`,
    ...(extras > 0 ? [`${unet + 1 + extras} (+${layout.extraSlots.join(", ")})`] : []),
    ...(from ? [`a ${from.layout} ${fromCount}/${fromCount + 1}`] : []),
  ];
  throw new GyozaError("recipe", `a ${family} weight vector has ${sizes.join(", ")} values, got ${n}`, {
    path,
  });
}

/** supermerger's translation of another layout's vector: the kept index ranges, in order. */
function translateVector(
  values: readonly number[],
  ranges: readonly (readonly [number, number])[],
): number[] {
  return ranges.flatMap(([begin, end]) => values.slice(begin, end));
}

/** The fields each object form allows, keyed by the field that names the form. */
const SPEC_FIELDS: Readonly<Record<string, readonly string[]>> = {
  preset: ["preset", "base"],
  value: ["value", "base"],
  values: ["values", "base"],
  curve: ["curve", "min", "max", "base"],
};

function checkSpecFields(spec: object, path: string): void {
  const fields = Object.keys(spec);
  const forms = fields.filter((field) => field in SPEC_FIELDS);
  if (forms.length !== 1) {
    throw new GyozaError(
      "recipe",
      forms.length === 0
        ? "a weight object needs one of preset, value, values or curve"
        : `a weight is one of ${forms.join(", ")}, not several`,
      { path },
    );
  }
  const allowed = SPEC_FIELDS[forms[0]!]!;
  for (const field of fields) {
    if (allowed.includes(field)) continue;
    const guess = didYouMean(field, allowed);
    throw new GyozaError("recipe", `unknown field "${field}" in a ${forms[0]} weight`, {
      path: `${path}.${field}`,
      fix: guess ? `did you mean "${guess}"?` : `fields: ${allowed.join(", ")}`,
    });
  }
  for (const field of ["base", "min", "max", "value"] as const) {
    const value = (spec as Record<string, unknown>)[field];
    if (value !== undefined) checkFinite(value as number, `${path}.${field}`);
  }
}

function isVector(spec: WeightSpec): spec is readonly number[] {
  return Array.isArray(spec);
}

function checkFinite(value: number, path: string): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new GyozaError("recipe", `weight ${String(value)} is not a finite number`, { path });
  }
}

/** The per-key view the engine uses: a block weight, elemental overrides on top, null when not merged. */
export interface KeyWeights {
  readonly family: Family;
  readonly rule: BlockRule;
  weightForKey(key: string): number | null;
}

export function keyWeights(
  weights: SlotWeights,
  family: Family,
  rule: BlockRule = "classic",
  overrides: readonly ElementalOverride[] = [],
  param = "alpha",
): KeyWeights {
  const compiled: readonly CompiledOverride[] = compileOverrides(overrides, family);
  return {
    family,
    rule,
    weightForKey(key) {
      const slot = slotOfKey(key, family, rule);
      if (slot === null) return null;
      return overrideFor(compiled, param, slot, key) ?? weights[slot]!;
    },
  };
}

/**
 * The alpha of every key for one weight spec: block weight, BASE, elemental overrides, null for
 * tensors that are not merged. `alphaForKey("COSINE", "sd1")(key)`.
 */
export function alphaForKey(
  spec: WeightSpec,
  family: Family,
  options: ResolveOptions & { rule?: BlockRule; overrides?: readonly ElementalOverride[] } = {},
): (key: string) => number | null {
  const weights = keyWeights(
    resolveWeights(spec, family, options),
    family,
    options.rule,
    options.overrides ?? [],
  );
  return (key) => weights.weightForKey(key);
}

/**
 * Parses a weight as typed on the command line: `0.3`, `0,0.1,…` (supermerger's comma list,
 * BASE first when 26 values), or a preset name. Malformed lists are usage errors naming the field
 * (see `parseWeightText`); `flag` names the option in them.
 */
export function parseWeightArgument(text: string, flag = "--alpha"): WeightSpec {
  return parseWeightText(text, { where: flag });
}
