import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { Option } from "commander";
import { GyozaError } from "../errors.js";
import { isDecimal } from "../merge/weight-text.js";
import type { OutputDtype } from "../recipe/index.js";

/**
 * One vocabulary for the flags several commands share: the same name, the same accepted values and
 * the same usage error (exit 2) for the same mistake, whichever command it is typed into.
 */

/** Every spelling of a precision people type, to the three a written checkpoint can have. */
const DTYPE_SPELLINGS: Readonly<Record<string, OutputDtype>> = {
  fp16: "fp16",
  f16: "fp16",
  float16: "fp16",
  half: "fp16",
  bf16: "bf16",
  bfloat16: "bf16",
  fp32: "fp32",
  f32: "fp32",
  float32: "fp32",
  float: "fp32",
};

/** `--dtype`: fp16, bf16 or fp32 (and their usual spellings), the same in every command. */
export function parseDtypeFlag(text: string): OutputDtype {
  const dtype = DTYPE_SPELLINGS[text.trim().toLowerCase()];
  if (!dtype) {
    throw new GyozaError("usage", `"${text}" is not a precision gyoza writes`, {
      path: "--dtype",
      fix: "use fp16, bf16 or fp32",
    });
  }
  return dtype;
}

export function dtypeOption(description: string, defaultValue?: OutputDtype): Option {
  const option = new Option("--dtype <dtype>", `${description}: fp16, bf16 or fp32`).argParser(
    parseDtypeFlag,
  );
  return defaultValue ? option.default(defaultValue) : option;
}

/** A flag that takes one decimal number (`--base 0.3`); `abc`, `0x1` and `NaN` are usage errors. */
export function numberFlag(flag: string): (text: string) => number {
  return (text) => {
    if (!isDecimal(text.trim()))
      throw new GyozaError("usage", `"${text}" is not a number`, { path: flag, fix: `e.g. ${flag} 0.5` });
    return Number(text);
  };
}

/** A flag that takes a whole number in a range (`--seed 42`). */
export function integerFlag(flag: string, min = 0, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const value = Number(text.trim());
    if (!/^[+-]?\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max)
      throw new GyozaError("usage", `"${text}" is not a whole number from ${min} to ${max}`, { path: flag });
    return value;
  };
}

/** A flag whose value is one of a fixed list (case-insensitive), with did-you-mean from the error. */
export function choiceFlag<T extends string>(flag: string, choices: readonly T[]): (text: string) => T {
  return (text) => {
    const found = choices.find((choice) => choice === text.trim().toLowerCase());
    if (!found)
      throw new GyozaError("usage", `"${text}" is not one of ${choices.join(", ")}`, { path: flag });
    return found;
  };
}

/** A folder flag given once per folder (`--search a --search b`): it never swallows a positional file. */
export function collectFlag(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function searchOption(description: string): Option {
  return new Option("--search <dir>", `${description} (repeat for more folders)`).argParser(collectFlag);
}

/** The hash cache switch, one name everywhere: `--no-hash-cache`. */
export function hashCacheOption(description = "hash again instead of reading the hash cache"): Option {
  return new Option("--no-hash-cache", description);
}

export function mkdirOption(): Option {
  return new Option("--mkdir", "create the output file's folder if it does not exist");
}

/**
 * Before anything is computed: the output's folder must exist (or be made with --mkdir), so an
 * hour of merging never ends in "no such file".
 */
export async function prepareOutputFolder(output: string, create: boolean | undefined): Promise<void> {
  const folder = dirname(resolve(output));
  const existing = await stat(folder).catch(() => undefined);
  if (existing?.isDirectory()) return;
  if (existing) {
    throw new GyozaError("usage", `${folder} is a file, not a folder`, {
      file: output,
      fix: "choose an output path inside a folder",
    });
  }
  if (!create) {
    throw new GyozaError("usage", `output folder ${folder} does not exist`, {
      file: output,
      fix: "create it or add --mkdir",
    });
  }
  await mkdir(folder, { recursive: true });
}
