import {
  BUILTIN_LAYOUT_CONVERSIONS,
  convertKey,
  type KeyRule,
  type LayoutConversion,
} from "../layout-conversion.js";
import { getLayout, type LayoutEntry } from "../layouts.js";
import data from "./lora-key-maps.json" with { type: "json" };

export type LoraBaseId = "sd1" | "sd2" | "sdxl";

/** A base model LoRAs are trained for, and how its module names map to its checkpoint keys. */
export interface LoraBaseSpec {
  id: LoraBaseId;
  name: string;
  /** The reference layout whose keys modules change (src/arch/layouts). */
  layout: string;
  /** kohya module prefix → the kohya single-file layout's key prefix, with '_' for '.'. */
  modulePrefixes: Record<string, string>;
  /** Built-in layout conversions (by their `from` layout) tried first. */
  conversions: string[];
  /** This base's own rules, tried after them (layout-conversions.json format). */
  rules: KeyRule[];
  parts: Record<string, Record<string, string>>;
}

/** The bases LoRAs are mapped for (data: src/arch/lora/lora-key-maps.json). */
export const LORA_BASES: readonly LoraBaseSpec[] = data.bases as unknown as LoraBaseSpec[];

export function loraBase(id: LoraBaseId): LoraBaseSpec {
  return LORA_BASES.find((base) => base.id === id)!;
}

/** The checkpoint key a module changes. */
export interface ModuleTarget {
  key: string;
  /** The key's shape in the reference layout (the whole tensor, also when `rows` is set). */
  shape: readonly number[];
  /** The module changes rows [part·n/of, (part+1)·n/of) only (OpenCLIP's packed q, k, v). */
  rows?: { part: number; of: number };
}

interface CompiledBase {
  conversions: LayoutConversion[];
  /** Reference layout key with '_' for '.' → its entry. */
  byUnderscoredKey: Map<string, LayoutEntry>;
}

const compiled = new Map<LoraBaseId, CompiledBase>();

const underscored = (text: string) => text.replaceAll(".", "_");

/** A layout conversion whose rules read '.' as '_', so they apply to kohya module names. */
function underscoredConversion(
  from: string,
  to: string,
  rules: readonly KeyRule[],
  parts: Record<string, Record<string, string>>,
): LayoutConversion {
  return {
    from,
    to,
    target: to,
    rules: rules.map((rule) => ({ ...rule, from: underscored(rule.from), to: underscored(rule.to) })),
    parts: Object.fromEntries(
      Object.entries(parts).map(([name, table]) => [
        name,
        Object.fromEntries(Object.entries(table).map(([a, b]) => [underscored(a), underscored(b)])),
      ]),
    ),
    fill: {},
  };
}

function compile(base: LoraBaseSpec): CompiledBase {
  const cached = compiled.get(base.id);
  if (cached) return cached;
  const conversions = base.conversions.map((from) => {
    const builtin = BUILTIN_LAYOUT_CONVERSIONS.find((c) => c.from === from);
    if (!builtin) throw new Error(`lora-key-maps.json: no built-in layout conversion from ${from}`);
    return underscoredConversion(builtin.from, builtin.to, builtin.rules, builtin.parts);
  });
  conversions.push(underscoredConversion(`lora-${base.id}`, base.layout, base.rules, base.parts));
  const byUnderscoredKey = new Map<string, LayoutEntry>();
  for (const entry of getLayout(base.layout).entries) {
    const name = underscored(entry.key);
    const other = byUnderscoredKey.get(name);
    if (other) throw new Error(`layout ${base.layout}: ${other.key} and ${entry.key} read the same with '_'`);
    byUnderscoredKey.set(name, entry);
  }
  const result = { conversions, byUnderscoredKey };
  compiled.set(base.id, result);
  return result;
}

/**
 * The key of `base`'s checkpoint that a kohya module changes (e.g. lora_te_text_model_encoder_layers_0_self_attn_q_proj
 * → cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight), or undefined
 * when its name has no key there.
 */
export function moduleTarget(moduleName: string, base: LoraBaseSpec): ModuleTarget | undefined {
  const prefix = Object.keys(base.modulePrefixes).find((p) => moduleName.startsWith(p));
  if (!prefix) return undefined;
  const { conversions, byUnderscoredKey } = compile(base);
  // The module's weight, as a key of the kohya single-file layout read with '_' for '.'.
  const weightKey = `${base.modulePrefixes[prefix]}${moduleName.slice(prefix.length)}_weight`;
  for (const conversion of conversions) {
    const converted = convertKey(weightKey, conversion);
    const entry = converted && byUnderscoredKey.get(converted.key);
    if (!entry) continue;
    const rows = converted.rule.concat;
    return { key: entry.key, shape: entry.shape, ...(rows ? { rows: { ...rows } } : {}) };
  }
  return undefined;
}

/** The shape a module's delta must have: the target's, or its share of the rows. */
export function targetDeltaShape(target: ModuleTarget, shape: readonly number[] = target.shape): number[] {
  if (!target.rows) return [...shape];
  return [shape[0]! / target.rows.of, ...shape.slice(1)];
}
