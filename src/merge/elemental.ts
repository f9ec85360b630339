import { GyozaError } from "../errors.js";
import { UNET_PREFIX } from "./block-rules.js";
import { type Family, type Slot, slotsOf } from "./slots.js";

/**
 * An elemental override: inside the named block(s), keys matching `pattern` get `value` instead of
 * the block weight, e.g. `{ block: "OUT04", pattern: "attn2", value: 0.2 }` takes only the
 * cross-attention of OUT04 at 0.2: the tool for moving "style" vs "anatomy" between models.
 *
 * Semantics follow supermerger's elemental merge
 * (https://github.com/hako-mikan/sd-webui-supermerger/blob/main/elemental_en.md): a pattern is a
 * plain substring (`attn2`, `attn2.to_out`, `ff.net`), several are separated by spaces, a leading
 * `NOT` inverts them (in `block` too: `NOT OUT04`), an empty pattern takes the whole block, and
 * later rules win over earlier ones. Two refinements: the substring is matched against the key
 * *after* its block prefix (so `1` does not match every key of `input_blocks.1.`), and a pattern
 * with `*` or `?` is a glob over that whole remainder (`*` crosses dots).
 */
export interface ElementalOverride {
  /** Slots (`OUT04`), inclusive ranges (`IN04-IN08`) or `*`, space-separated, optionally led by `NOT`. */
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

/** The slot names a block selector mentions (range ends included), for validation before the family is known. */
export function blockSelectorNames(block: string): string[] {
  const { items } = splitNot(block);
  return items
    .filter((item) => item !== "*")
    .flatMap((item) => item.split("-").map((part) => part.trim().toUpperCase()));
}

/** The set of slots an override's `block` names; throws a recipe error at `path` when a slot does not exist. */
export function overrideSlots(block: string, family: Family, path?: string): ReadonlySet<Slot> {
  const slots = slotsOf(family);
  const { negate, items } = splitNot(block);
  const selected = new Set<Slot>();
  for (const item of items.length === 0 ? ["*"] : items) {
    if (item === "*") {
      for (const slot of slots) selected.add(slot);
      continue;
    }
    const [from, to = from] = item.split("-").map((part) => part.trim().toUpperCase());
    const start = slots.indexOf(from!);
    const end = slots.indexOf(to!);
    if (start < 0 || end < 0 || end < start) {
      throw new GyozaError("recipe", `"${item}" is not a ${family} block or block range`, {
        path,
        fix: `use slots (${slots[1]}, M00, …), ranges like IN04-IN08, * or NOT …`,
      });
    }
    for (const slot of slots.slice(start, end + 1)) selected.add(slot);
  }
  return negate ? new Set(slots.filter((slot) => !selected.has(slot))) : selected;
}

/** supermerger's syntax: space-separated alternatives, optionally led by NOT to invert them. */
function splitNot(text: string): { negate: boolean; items: string[] } {
  const tokens = text.trim().split(/\s+/).filter(Boolean);
  const negate = tokens[0] === "NOT";
  return { negate, items: negate ? tokens.slice(1) : tokens };
}

export function compilePattern(pattern: string): (remainder: string) => boolean {
  const { negate, items } = splitNot(pattern);
  if (items.length === 0) return () => true;
  const tests = items.map(compileOne);
  return (remainder) => tests.some((test) => test(remainder)) !== negate;
}

function compileOne(pattern: string): (remainder: string) => boolean {
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
