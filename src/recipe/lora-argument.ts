import { basename } from "node:path";
import { GyozaError } from "../errors.js";
import { parseLoraBlockWeights } from "../merge/index.js";
import { isDecimal } from "../merge/weight-text.js";

/** One `--lora FILE:RATIO[:WEIGHTS]` of the command line. */
export interface InlineLora {
  path: string;
  ratio: number;
  /** LoRA Block Weight: 12/17/20/26 comma-separated values or a preset name. */
  weights?: string;
}

/** A ratio as people type it: a plain decimal number. */

const SYNTAX = "write FILE:RATIO[:WEIGHTS], e.g. detail.safetensors:0.6 or detail.safetensors:0.6:OUTALL";

/**
 * supermerger's `name:ratio[:block weights]` with a file for the name, read from the right so a
 * file name may hold colons (`C:\loras\x.safetensors:0.6`): the last field is the ratio, or the
 * block weights when the field before it is the ratio. The weights are checked here too, so a
 * trailing comma or a word is refused before any file is opened.
 */
export function parseLoraArgument(text: string, flag = "--lora"): InlineLora {
  const fields = text.split(":");
  const where = `${flag} ${text}`;
  if (fields.length < 2 || fields[0] === "") {
    throw new GyozaError("usage", `"${text}" has no ratio`, { path: flag, fix: SYNTAX });
  }
  const last = fields.at(-1)!.trim();
  if (isDecimal(last)) return { path: fields.slice(0, -1).join(":"), ratio: Number(last) };
  const ratio = fields.length >= 3 ? fields.at(-2)!.trim() : undefined;
  if (ratio === undefined || !isDecimal(ratio)) {
    const shown = ratio ?? last;
    throw new GyozaError("usage", `the ratio "${shown}" of ${text} is not a number`, {
      path: flag,
      fix: SYNTAX,
    });
  }
  const weights = fields.at(-1)!;
  parseLoraBlockWeights(weights, { where });
  return { path: fields.slice(0, -2).join(":"), ratio: Number(ratio), weights: weights.trim() };
}

/** A recipe input name for a LoRA file: its stem where that is a valid name, unique among `taken`. */
export function loraInputName(path: string, taken: ReadonlySet<string>): string {
  const stem = basename(path)
    .replace(/\.[^.]+$/, "")
    .replace(/[^A-Za-z0-9_-]/g, "_");
  const name = /^[A-Za-z_]/.test(stem) ? stem : `lora_${stem}`;
  let unique = name;
  for (let n = 2; taken.has(unique); n++) unique = `${name}_${n}`;
  return unique;
}
