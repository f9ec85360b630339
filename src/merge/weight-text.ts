import { GyozaError } from "../errors.js";
import { type Slot, slotsOf, unetSlotsOf } from "./slots.js";

/**
 * supermerger's and the MBW tool's text form of a block-weight vector: comma-separated numbers,
 * `1,0.9,…,0` (25 UNet values, or 26 with BASE first; 19/20/21 for SDXL). The CLI's `--alpha` and
 * a recipe's `alpha: "1,0.9,…"` both go through here. A stray comma must never shift every block by
 * one (`…,1,` would otherwise read as 26 values, BASE first), so every field must be a plain decimal
 * number and the count is checked against the layouts that exist.
 */

/** A decimal number as people type it; `0x10`, `1_000`, `Infinity` and `1e` are refused. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Whether `text` is a plain decimal number (the one rule for every number a user types). */
export function isDecimal(text: string): boolean {
  return DECIMAL.test(text);
}

/** Vector lengths some family accepts (see `fromVector` in weights.ts). */
const VECTOR_LENGTHS = [19, 20, 21, 25, 26] as const;

/** The slot each field sets when a vector has `count` values (SD1 names for 25/26, SDXL for 19–21). */
function slotNamesFor(count: number): readonly Slot[] | undefined {
  if (count === 25) return unetSlotsOf("sd1");
  if (count === 26) return slotsOf("sd1");
  if (count === 19) return unetSlotsOf("sdxl");
  if (count === 20) return slotsOf("sdxl").slice(0, 20);
  if (count === 21) return slotsOf("sdxl");
  return undefined;
}

/** True when `text` is a comma-separated list (what `parseWeightText` turns into a vector). */
export function isWeightList(text: string): boolean {
  return text.includes(",");
}

export interface WeightTextOptions {
  /** How the value was given, for messages: `--alpha`, `steps.final.alpha`. */
  where?: string;
  /** The error code: "usage" for command-line text (the default), "recipe" inside a recipe. */
  code?: "usage" | "recipe";
}

/**
 * `"0.3"` → 0.3, `"1,0.9,…"` → a vector, anything else → the text itself (a preset name, checked
 * later against the preset tables). Throws a usage error naming the field, its position and the
 * block it would have set for empty fields, non-numbers, a count no layout has, and
 * space-separated numbers.
 */
export function parseWeightText(text: string, options: WeightTextOptions = {}): number | number[] | string {
  const where = options.where ?? "weight";
  const code = options.code ?? "usage";
  const trimmed = text.trim();
  if (trimmed === "") throw new GyozaError(code, "is empty", { path: where, fix: weightFix() });
  if (!isWeightList(trimmed)) {
    if (DECIMAL.test(trimmed)) return Number(trimmed);
    const tokens = trimmed.split(/\s+/);
    if (tokens.length > 1 && tokens.every((token) => DECIMAL.test(token.replace(/;$/, "")))) {
      throw new GyozaError(code, `${tokens.length} space-separated numbers`, {
        path: where,
        fix: `separate block weights with commas: "${tokens.join(",")}"`,
      });
    }
    if (/^[+-]?[\d.]/.test(trimmed)) {
      throw new GyozaError(code, `"${trimmed}" is not a number`, { path: where, fix: weightFix() });
    }
    return trimmed;
  }
  const fields = trimmed.split(",").map((field) => field.trim());
  const count = fields.length;
  fields.forEach((field, i) => {
    if (field === "") throw emptyFieldError(fields, i, where, code);
    if (!DECIMAL.test(field)) {
      throw new GyozaError(code, `field ${i + 1} "${field}" is not a number${settingOf(count, i)}`, {
        path: where,
        fix: /\s/.test(field)
          ? "separate every value with a comma"
          : "block weights are plain decimal numbers such as 0.25",
      });
    }
  });
  if (!(VECTOR_LENGTHS as readonly number[]).includes(count)) {
    throw new GyozaError(code, `has ${count} values`, {
      path: where,
      fix: "give 25 values (IN00..OUT11) or 26 (BASE first) for SD 1.x/2.x, 19, 20 (BASE first) or 21 (+VAE) for SDXL, or one number for every block",
    });
  }
  return fields.map(Number);
}

function emptyFieldError(
  fields: readonly string[],
  index: number,
  where: string,
  code: "usage" | "recipe",
): GyozaError {
  const position = `field ${index + 1} is empty`;
  const last = index === fields.length - 1;
  const first = index === 0;
  // Without the empty field, which layout was meant? Name the block the field sits after.
  const meant = slotNamesFor(fields.length - 1);
  let context = "";
  if (meant && !first) context = ` (after ${meant[index - 1]})`;
  else if (first && meant) context = ` (before ${meant[0]})`;
  const fix = last
    ? "remove the trailing comma"
    : first
      ? "remove the leading comma"
      : "put a number between the two commas, or remove one of them";
  return new GyozaError(code, `${position}${context}`, { path: where, fix });
}

function settingOf(count: number, index: number): string {
  const names = slotNamesFor(count);
  return names ? ` (it would set ${names[index]})` : "";
}

function weightFix(): string {
  return "a weight is a number (0.3), 25 or 26 comma-separated numbers (BASE first), or a preset name such as COSINE (gyoza presets lists them)";
}
