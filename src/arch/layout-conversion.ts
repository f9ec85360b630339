import { GyozaError } from "../errors.js";
import type { Detection, TensorShapeInfo } from "./detect.js";
import data from "./layout-conversions.json" with { type: "json" };

/** Shape changes a rule may ask for (see src/arch/layout-conversions.json). */
export type Reshape = "linear-to-conv" | "transpose";

export interface KeyRule {
  from: string;
  to: string;
  reshape?: Reshape;
  /** This key is part `part` of `of` joined along the first axis into the target key. */
  concat?: { part: number; of: number };
  /** Why the rule is what it is (the layouts' semantics, not a description of the rule). */
  note?: string;
}

export interface LayoutConversion {
  /** The reference layout converted from (src/arch/layouts), e.g. "sd1-kohya". */
  from: string;
  /** The reference layout converted to, e.g. "sd1-ldm". */
  to: string;
  /** The `--layout` value that asks for this conversion. */
  target: string;
  rules: KeyRule[];
  /** Tables that rename the rest of a key: prefix → replacement. */
  parts: Record<string, Record<string, string>>;
  /** Target keys the source lacks, and what they get. */
  fill: Record<string, "clip-position-ids">;
}

/** The built-in conversions (data: src/arch/layout-conversions.json). */
export const BUILTIN_LAYOUT_CONVERSIONS: readonly LayoutConversion[] =
  data.conversions as unknown as LayoutConversion[];

/** `--layout` value → the key layouts (Detection.keyLayout) that already are it. */
export const LAYOUT_TARGETS: Readonly<Record<string, readonly string[]>> = data.targets;

/** One tensor of the converted state dict and how it is made from the source tensors. */
export interface ConvertedKey {
  key: string;
  /** Source keys: one; the parts in order for a concat; none for a fill. */
  sources: string[];
  shape: number[];
  op: "rename" | Reshape | "concat" | "fill";
  fill?: "clip-position-ids";
}

/** CLIP position_ids: int64 arange(77), shape [1, 77]. */
const POSITION_IDS_SHAPE = [1, 77];

/** The conversion from a reference layout to a `--layout` target, if there is one. */
export function findLayoutConversion(
  fromLayout: string | null | undefined,
  target: string,
  conversions: readonly LayoutConversion[] = BUILTIN_LAYOUT_CONVERSIONS,
): LayoutConversion | undefined {
  return conversions.find((c) => c.from === fromLayout && c.target === target);
}

interface CompiledRule {
  rule: KeyRule;
  pattern: RegExp;
  /** Placeholder name of each capture group, in order. */
  names: string[];
}

const PLACEHOLDER = /\{([^}]+)\}/g;
const compiledCache = new WeakMap<LayoutConversion, CompiledRule[]>();

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function compile(conversion: LayoutConversion): CompiledRule[] {
  const cached = compiledCache.get(conversion);
  if (cached) return cached;
  const compiled = conversion.rules.map((rule) => {
    const names: string[] = [];
    let source = "^";
    let last = 0;
    for (const match of rule.from.matchAll(PLACEHOLDER)) {
      const name = match[1]!;
      source += escapeRegExp(rule.from.slice(last, match.index));
      source += name === "*" || conversion.parts[name] ? "(.+)" : "(\\d+)";
      names.push(name);
      last = match.index + match[0].length;
    }
    source += `${escapeRegExp(rule.from.slice(last))}$`;
    return { rule, pattern: new RegExp(source), names };
  });
  compiledCache.set(conversion, compiled);
  return compiled;
}

/** The longest prefix of `rest` in `table`, replaced; undefined when none matches. */
function renamePart(table: Record<string, string>, rest: string): string | undefined {
  let best: string | undefined;
  for (const prefix of Object.keys(table))
    if (rest.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
  return best === undefined ? undefined : table[best] + rest.slice(best.length);
}

/** Block-number arithmetic of a template: a sum of terms like `3*i`, `j`, `-i`, `1`. */
function evaluate(expression: string, numbers: Readonly<Record<string, number>>): number {
  const terms = expression.replace(/\s+/g, "").match(/[+-]?[^+-]+/g) ?? [];
  let value = 0;
  for (const term of terms) {
    const parsed = /^([+-]?)(?:(\d+)\*)?([a-z]\w*|\d+)$/.exec(term);
    const name = parsed?.[3];
    const operand = name === undefined ? undefined : /^\d+$/.test(name) ? Number(name) : numbers[name];
    if (!parsed || operand === undefined)
      throw new Error(`layout conversion: cannot evaluate "${expression}" (term "${term}")`);
    value += (parsed[1] === "-" ? -1 : 1) * Number(parsed[2] ?? 1) * operand;
  }
  return value;
}

/** A key's name in the target layout and the rule that gave it, or undefined when no rule applies. */
export function convertKey(
  key: string,
  conversion: LayoutConversion,
): { key: string; rule: KeyRule } | undefined {
  for (const { rule, pattern, names } of compile(conversion)) {
    const match = pattern.exec(key);
    if (!match) continue;
    const numbers: Record<string, number> = {};
    const texts: Record<string, string> = {};
    let fits = true;
    names.forEach((name, index) => {
      const captured = match[index + 1]!;
      const table = conversion.parts[name];
      if (name === "*") texts[name] = captured;
      else if (table) {
        const renamed = renamePart(table, captured);
        if (renamed === undefined) fits = false;
        else texts[name] = renamed;
      } else numbers[name] = Number(captured);
    });
    if (!fits) continue;
    let valid = true;
    const converted = rule.to.replace(PLACEHOLDER, (_, name: string) => {
      const text = texts[name];
      if (text !== undefined) return text;
      const value = evaluate(name, numbers);
      if (value < 0) valid = false;
      return String(value);
    });
    if (valid) return { key: converted, rule };
  }
  return undefined;
}

function duplicateError(target: string, first: string, second: string, file?: string): GyozaError {
  return new GyozaError("format", `${first} and ${second} both become ${target}`, {
    ...(file ? { file } : {}),
    fix: "the file holds one tensor twice under two names: keep one of them",
  });
}

/**
 * The converted state dict, described from shapes only: every source key renamed (and reshaped,
 * transposed or joined) by the conversion's rules, plus the keys it fills in. Throws when a key has
 * no rule, two keys land on one name, or the parts of a join are missing or do not fit together.
 */
export function planLayoutConversion(
  tensors: ReadonlyMap<string, TensorShapeInfo>,
  conversion: LayoutConversion,
  file?: string,
): ConvertedKey[] {
  const where = file ? { file } : {};
  const planned = new Map<string, ConvertedKey & { rule: KeyRule; parts?: (string | undefined)[] }>();
  const unmapped: string[] = [];
  for (const [key, tensor] of tensors) {
    const converted = convertKey(key, conversion);
    if (!converted) {
      unmapped.push(key);
      continue;
    }
    const { rule } = converted;
    const existing = planned.get(converted.key);
    const firstOf = (entry: { sources: string[]; parts?: (string | undefined)[] }) =>
      entry.sources[0] ?? entry.parts?.find((part) => part !== undefined) ?? "";
    if (rule.concat) {
      const parts = existing?.parts ?? new Array<string | undefined>(rule.concat.of).fill(undefined);
      if (existing && !existing.parts) throw duplicateError(converted.key, firstOf(existing), key, file);
      const taken = parts[rule.concat.part];
      if (taken !== undefined) throw duplicateError(converted.key, taken, key, file);
      parts[rule.concat.part] = key;
      planned.set(converted.key, { key: converted.key, sources: [], shape: [], op: "concat", rule, parts });
      continue;
    }
    if (existing) throw duplicateError(converted.key, firstOf(existing), key, file);
    const shape = [...tensor.shape];
    let op: ConvertedKey["op"] = "rename";
    if (rule.reshape === "linear-to-conv" && shape.length === 2) {
      shape.push(1, 1);
      op = "linear-to-conv";
    } else if (rule.reshape === "transpose") {
      if (shape.length !== 2)
        throw new GyozaError("format", `${key} has shape [${shape}], not the 2-D matrix it should be`, where);
      shape.reverse();
      op = "transpose";
    }
    planned.set(converted.key, { key: converted.key, sources: [key], shape, op, rule });
  }
  if (unmapped.length > 0) {
    throw new GyozaError(
      "format",
      `${unmapped.length} keys have no name in the ${conversion.to} layout (e.g. ${unmapped.slice(0, 3).join(", ")})`,
      {
        ...where,
        fix: `only keys of the ${conversion.from} layout can be converted: remove the others first`,
      },
    );
  }
  const result: ConvertedKey[] = [];
  for (const entry of planned.values()) {
    if (entry.op !== "concat") {
      result.push({ key: entry.key, sources: entry.sources, shape: entry.shape, op: entry.op });
      continue;
    }
    const sources = entry.parts!;
    const missing = sources.indexOf(undefined);
    if (missing >= 0) {
      const present = sources.find((source) => source !== undefined)!;
      throw new GyozaError(
        "format",
        `${entry.key} needs ${sources.length} parts, ${present} has no part ${missing}`,
        where,
      );
    }
    result.push({
      key: entry.key,
      sources: sources as string[],
      shape: joinedShape(entry.key, sources as string[], tensors, file),
      op: "concat",
    });
  }
  for (const [key, fill] of Object.entries(conversion.fill)) {
    if (!planned.has(key))
      result.push({ key, sources: [], shape: [...POSITION_IDS_SHAPE], op: "fill", fill });
  }
  return result;
}

/** Shape of parts joined along the first axis: the other axes and the dtype must agree. */
function joinedShape(
  target: string,
  sources: readonly string[],
  tensors: ReadonlyMap<string, TensorShapeInfo>,
  file?: string,
): number[] {
  const first = tensors.get(sources[0]!)!;
  let rows = 0;
  for (const source of sources) {
    const part = tensors.get(source)!;
    const fits =
      part.dtype === first.dtype &&
      part.shape.length === first.shape.length &&
      part.shape.length > 0 &&
      part.shape.every((dim, axis) => axis === 0 || dim === first.shape[axis]);
    if (!fits) {
      throw new GyozaError(
        "format",
        `${source} (${part.dtype} [${part.shape}]) cannot join ${sources[0]} (${first.dtype} [${first.shape}]) into ${target}`,
        file ? { file } : {},
      );
    }
    rows += part.shape[0]!;
  }
  return [rows, ...first.shape.slice(1)];
}

/** `path` as a shell word (quoted only when it needs it), for fix lines. */
function shellWord(path: string): string {
  return /^[\w./@%+=:,-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}

/**
 * Refuses a merge input whose keys are in a layout merges do not read (kohya): the fix line is the
 * convert command that renames them.
 */
export function assertMergeableKeyLayout(
  detection: Detection,
  file: string,
  inputName: string,
  conversions: readonly LayoutConversion[] = BUILTIN_LAYOUT_CONVERSIONS,
): void {
  const conversion = conversions.find((c) => c.from === detection.spec?.layout);
  if (!conversion) return;
  const output = `${file.replace(/\.(safetensors|ckpt|pt|pth|bin)$/i, "")}-${conversion.target}.safetensors`;
  throw new GyozaError(
    "architecture-mismatch",
    `input "${inputName}" is ${detection.name} with ${detection.keyLayout} key names (${conversion.from}); merges read the ${conversion.target} layout (${conversion.to})`,
    {
      file,
      fix: `gyoza convert ${shellWord(file)} ${shellWord(output)} --layout ${conversion.target}, then merge that file`,
    },
  );
}
