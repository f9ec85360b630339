import { GyozaError } from "../errors.js";
import { UNET_PREFIX } from "./block-rules.js";
import { type Family, type Slot, slotsOf } from "./slots.js";

/**
 * An elemental override: inside the named block(s), keys matching `pattern` get `value` instead of
 * the block weight, e.g. `{ block: "OUT04", pattern: "attn2", value: 0.2 }` takes only the
 * cross-attention of OUT04 at 0.2: the tool for moving "style" vs "anatomy" between models.
 *
 * Semantics follow supermerger's elemental merge (elemental_en.md): the pattern is a plain substring
 * (e.g. `attn2`, `ff.net`, `norm`), later rules win over earlier ones, and an empty pattern takes
 * the whole block. Two refinements: the substring is matched against the key *after* its block
 * prefix (so `1` does not match every key of `input_blocks.1.`), and a pattern with `*` or `?` is
 * a glob over that whole remainder (`*` crosses dots).
 */
export interface ElementalOverride {
  /** A slot (`OUT04`), an inclusive range (`IN04-IN08`) or `*` for every block. */
  readonly block: string;
  readonly pattern: string;
  readonly value: number;
  /** The method parameter it overrides; alpha unless named. */
  readonly param?: string;
}

const BLOCK_PREFIX = /^(?:input_blocks|output_blocks)\.\d+\.|^middle_block\./;

/** The part of `key` an elemental pattern is matched against. */
export function elementalRemainder(key: string): string {
  if (!key.startsWith(UNET_PREFIX)) return key;
  const inner = key.slice(UNET_PREFIX.length);
  return inner.replace(BLOCK_PREFIX, "");
}

/** The set of slots an override's `block` names; throws a recipe error at `path` when a slot does not exist. */
export function overrideSlots(block: string, family: Family, path?: string): ReadonlySet<Slot> {
  const slots = slotsOf(family);
  if (block === "*") return new Set(slots);
  const [from, to = from] = block.split("-").map((part) => part.trim().toUpperCase());
  const start = slots.indexOf(from!);
  const end = slots.indexOf(to!);
  if (start < 0 || end < 0 || end < start) {
    throw new GyozaError("recipe", `"${block}" is not a ${family} block or block range`, {
      path,
      fix: `use a slot (${slots[1]}, M00, …), a range like IN04-IN08, or *`,
    });
  }
  return new Set(slots.slice(start, end + 1));
}

export function compilePattern(pattern: string): (remainder: string) => boolean {
  if (!/[*?]/.test(pattern)) return (remainder) => remainder.includes(pattern);
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  const regex = new RegExp(`^${source}$`);
  return (remainder) => regex.test(remainder);
}

export interface CompiledOverride {
  readonly slots: ReadonlySet<Slot>;
  readonly matches: (remainder: string) => boolean;
  readonly value: number;
  readonly param: string;
}

export function compileOverrides(
  overrides: readonly ElementalOverride[],
  family: Family,
  path = "overrides",
): CompiledOverride[] {
  return overrides.map((override, i) => ({
    slots: overrideSlots(override.block, family, `${path}[${i}].block`),
    matches: compilePattern(override.pattern),
    value: override.value,
    param: override.param ?? "alpha",
  }));
}

/** The value of the last override for `param` that matches the key in `slot`, or undefined. */
export function overrideFor(
  compiled: readonly CompiledOverride[],
  param: string,
  slot: Slot,
  key: string,
): number | undefined {
  let value: number | undefined;
  const remainder = elementalRemainder(key);
  for (const override of compiled) {
    if (override.param === param && override.slots.has(slot) && override.matches(remainder))
      value = override.value;
  }
  return value;
}
