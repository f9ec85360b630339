import { readFileSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { GenerationParams } from "../backends/types.js";
import { didYouMean, GyozaError, isGyozaError } from "../errors.js";
import {
  builtinMethods,
  type Family,
  findMethod,
  findPreset,
  resolveWeights,
  slotsOf,
  type WeightSpec,
} from "../merge/index.js";
import { type Recipe, type RecipeStep, validateRecipe } from "../recipe/index.js";
import { imageSizeOf } from "./run-sample.js";

/**
 * The axes of `gyoza grid`: `--x "OUT03=0,0.2,0.4" --y "seed=1,2,3" --z "clip_skip=1,2"`. An axis
 * names one parameter, of the recipe (a step's alpha or beta, one block's weight, a preset, a
 * method, an input model) or of the generation (seed, prompt, negative, clip_skip, vae, cfg, steps,
 * sampler, scheduler, size), and lists its values. Each value, applied to the recipe or the
 * generation settings, gives a valid recipe (checked by the recipe validator) or valid settings;
 * a value that cannot is refused before anything runs, naming the axis and the value.
 */

export type AxisLetter = "x" | "y" | "z";

/** Most values one axis may list (a 100×100 grid is already 10 000 images). */
export const MAX_AXIS_VALUES = 100;
/** Largest `@file` of prompts read for a prompt axis. */
export const MAX_PROMPT_FILE_BYTES = 1_000_000;

export type GenerationField =
  | "seed"
  | "prompt"
  | "negative"
  | "clip_skip"
  | "vae"
  | "cfg"
  | "steps"
  | "sampler"
  | "scheduler"
  | "size";

const GENERATION_FIELDS: readonly GenerationField[] = [
  "seed",
  "prompt",
  "negative",
  "clip_skip",
  "vae",
  "cfg",
  "steps",
  "sampler",
  "scheduler",
  "size",
];

/** What an axis changes. `step` is the recipe step (the output step when the user named none). */
export type AxisTarget =
  | { kind: "weight"; step: string; param: "alpha" | "beta" }
  | { kind: "block"; step: string; slot: string }
  | { kind: "preset"; step: string }
  | { kind: "method"; step: string }
  | { kind: "input"; input: string }
  | { kind: "generation"; field: GenerationField };

export type AxisValue = number | string | { width: number; height: number };

export interface GridAxis {
  axis: AxisLetter;
  /** The parameter as the user typed it (`OUT03`, `texture.alpha`, `seed`). */
  parameter: string;
  target: AxisTarget;
  values: AxisValue[];
  /** One label per value, in the user's terms: `OUT03 = 0.2`, `alpha = COSINE`, `seed = 2`. */
  labels: string[];
}

export interface AxisContext {
  /** The grid's base recipe (its input paths as the caller resolved them). */
  recipe: Recipe;
  /** The recipe's output step (what `validateRecipe` returns). */
  outputStep: string;
  /** The inputs' family: needed for block and preset axes. */
  family?: Family;
  /** Relative `@file` and input paths start here (default: the current folder). */
  cwd?: string;
}

/** Parses one `--x/--y/--z` argument and checks every value against the base recipe. */
export function parseGridAxis(axis: AxisLetter, text: string, context: AxisContext): GridAxis {
  const equals = text.indexOf("=");
  if (equals <= 0) {
    throw axisError(
      axis,
      `"${text}" is not PARAMETER=VALUES`,
      'e.g. --x "alpha=0.2,0.4" or --y "seed=1,2,3"',
    );
  }
  const parameter = text.slice(0, equals).trim();
  const valuesText = text.slice(equals + 1);
  const target = parseTarget(axis, parameter, context);
  const raw = splitValues(axis, parameter, target, valuesText, context.cwd ?? process.cwd());
  if (raw.length === 0) throw axisError(axis, `${parameter} lists no values`);
  if (raw.length > MAX_AXIS_VALUES) {
    throw axisError(axis, `${parameter} lists ${raw.length} values; at most ${MAX_AXIS_VALUES}`);
  }
  const values = raw.map((value) => parseValue(axis, parameter, target, value, context));
  const labels = values.map((value) => labelOf(parameter, target, value));
  const seen = new Set<string>();
  for (const label of labels) {
    if (seen.has(label)) throw axisError(axis, `${label} is listed twice`, "list each value once");
    seen.add(label);
  }
  const parsed: GridAxis = { axis, parameter, target, values, labels };
  if (target.kind !== "generation") {
    values.forEach((_, index) => {
      checkRecipeValue(parsed, index, context);
    });
  }
  return parsed;
}

/** Refuses two axes over the same parameter (the later would silently win). */
export function checkDistinctAxes(axes: readonly GridAxis[]): void {
  const keys = new Map<string, AxisLetter>();
  for (const axis of axes) {
    const key = targetKey(axis.target);
    const other = keys.get(key);
    if (other) {
      throw axisError(
        axis.axis,
        `${axis.parameter} is already the ${other} axis`,
        "give each axis its own parameter",
      );
    }
    keys.set(key, axis.axis);
  }
}

/** One value of one axis: what a cell picks. */
export interface AxisPick {
  axis: GridAxis;
  index: number;
}

/** Applies a cell's picks: recipe values give a new (validated) recipe, generation values new settings. */
export function applyPicks(
  recipe: Recipe,
  params: GenerationParams,
  picks: readonly AxisPick[],
  context: Omit<AxisContext, "recipe">,
): { recipe: Recipe; params: GenerationParams } {
  let next = structuredClone(recipe);
  const nextParams: GenerationParams = { ...params };
  const ordered = [...picks].sort((a, b) => ORDER[a.axis.target.kind] - ORDER[b.axis.target.kind]);
  for (const pick of ordered) {
    const { target } = pick.axis;
    const value = pick.axis.values[pick.index]!;
    if (target.kind === "generation") applyGeneration(nextParams, target.field, value);
    else next = applyRecipeValue(next, target, value, context.family);
  }
  if (ordered.some((pick) => pick.axis.target.kind !== "generation")) {
    try {
      validateRecipe(next);
    } catch (error) {
      const labels = ordered.map((pick) => pick.axis.labels[pick.index]).join(", ");
      if (isGyozaError(error)) {
        throw new GyozaError("usage", `the cell ${labels} gives an invalid recipe: ${error.message}`, {
          path: error.path,
          fix: error.fix,
          cause: error,
        });
      }
      throw error;
    }
  }
  return { recipe: next, params: nextParams };
}

/** Input and method first (they change what the weights mean), then a preset, then the weights on top. */
const ORDER: Record<AxisTarget["kind"], number> = {
  input: 0,
  method: 1,
  preset: 2,
  weight: 3,
  block: 4,
  generation: 5,
};

function targetKey(target: AxisTarget): string {
  switch (target.kind) {
    case "generation":
      return `generation.${target.field}`;
    case "input":
      return `input.${target.input}`;
    case "block":
      return `${target.step}.${target.slot}`;
    case "weight":
      return `${target.step}.${target.param}`;
    default:
      return `${target.step}.${target.kind}`;
  }
}

function parseTarget(axis: AxisLetter, parameter: string, context: AxisContext): AxisTarget {
  const { recipe, outputStep } = context;
  const lower = parameter.toLowerCase();
  if (!parameter.includes(".")) {
    const field = lower.replace(/-/g, "_");
    if (field === "clip_skip" || field === "clipskip") return { kind: "generation", field: "clip_skip" };
    if (field === "negative_prompt") return { kind: "generation", field: "negative" };
    if ((GENERATION_FIELDS as readonly string[]).includes(field)) {
      return { kind: "generation", field: field as GenerationField };
    }
    return stepTarget(axis, parameter, outputStep, parameter, context);
  }
  const dot = parameter.indexOf(".");
  const head = parameter.slice(0, dot);
  const rest = parameter.slice(dot + 1);
  if (head === "input" && !(head in recipe.steps)) {
    if (!(rest in recipe.inputs)) {
      const guess = didYouMean(rest, Object.keys(recipe.inputs));
      throw axisError(
        axis,
        `the recipe has no input "${rest}"${guess ? ` (did you mean "${guess}"?)` : ""}`,
        `inputs: ${Object.keys(recipe.inputs).join(", ")}`,
      );
    }
    return { kind: "input", input: rest };
  }
  if (!(head in recipe.steps)) {
    const guess = didYouMean(head, Object.keys(recipe.steps));
    throw axisError(
      axis,
      `the recipe has no step "${head}"${guess ? ` (did you mean "${guess}"?)` : ""}`,
      `steps: ${Object.keys(recipe.steps).join(", ")}; or input.NAME for an input model`,
    );
  }
  return stepTarget(axis, rest, head, parameter, context);
}

function stepTarget(
  axis: AxisLetter,
  name: string,
  step: string,
  parameter: string,
  context: AxisContext,
): AxisTarget {
  const lower = name.toLowerCase();
  if (lower === "alpha" || lower === "beta") return { kind: "weight", step, param: lower };
  if (lower === "preset") return { kind: "preset", step };
  if (lower === "method") return { kind: "method", step };
  const slot = name.toUpperCase();
  if (/^(BASE|VAE|M00|IN\d\d|OUT\d\d)$/.test(slot)) {
    if (!context.family) {
      throw axisError(
        axis,
        `${parameter}: a block axis needs the inputs' family`,
        "the inputs must be readable",
      );
    }
    const slots = slotsOf(context.family);
    if (!slots.includes(slot)) {
      const guess = didYouMean(slot, slots);
      throw axisError(
        axis,
        `${context.family} has no block ${slot}${guess ? ` (did you mean ${guess}?)` : ""}`,
        `${context.family} blocks: ${slots.join(", ")}`,
      );
    }
    return { kind: "block", step, slot };
  }
  const known = [
    "alpha",
    "beta",
    "preset",
    "method",
    "OUT03 (a block)",
    ...GENERATION_FIELDS,
    "STEP.alpha",
    "input.NAME",
  ];
  const guess = didYouMean(name, ["alpha", "beta", "preset", "method", ...GENERATION_FIELDS]);
  throw axisError(
    axis,
    `unknown parameter "${parameter}"${guess ? ` (did you mean "${guess}"?)` : ""}`,
    `parameters: ${known.join(", ")}`,
  );
}

function splitValues(
  axis: AxisLetter,
  parameter: string,
  target: AxisTarget,
  text: string,
  cwd: string,
): string[] {
  const isText = target.kind === "generation" && (target.field === "prompt" || target.field === "negative");
  if (isText) {
    if (text.startsWith("@")) return readPromptFile(axis, resolve(cwd, text.slice(1)));
    return text.split("|").map((value) => value.trim());
  }
  const parts = text.split(",").map((value) => value.trim());
  if (parts.some((part) => part === "")) {
    throw axisError(
      axis,
      `${parameter} has an empty value in "${text}"`,
      "separate values with single commas",
    );
  }
  return parts.flatMap((part) => (isRange(part) ? expandRange(axis, parameter, part) : [part]));
}

function readPromptFile(axis: AxisLetter, file: string): string[] {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (cause) {
    throw new GyozaError("io", `cannot read the ${axis} axis prompt file: ${(cause as Error).message}`, {
      file,
      cause,
    });
  }
  if (size > MAX_PROMPT_FILE_BYTES) {
    throw new GyozaError("limit", `the prompt file is ${size} bytes; at most ${MAX_PROMPT_FILE_BYTES}`, {
      file,
    });
  }
  return readFileSync(file, "utf8")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

const NUMBER = "-?(?:\\d+(?:\\.\\d*)?|\\.\\d+)";
const RANGE = new RegExp(`^${NUMBER}:${NUMBER}(?::${NUMBER})?$`);

function isRange(text: string): boolean {
  return RANGE.test(text);
}

/** `0:1:0.25` → 0, 0.25, 0.5, 0.75, 1 (both ends included; `1:5` steps by 1). */
function expandRange(axis: AxisLetter, parameter: string, text: string): string[] {
  const [from, to, step = 1] = text.split(":").map(Number) as [number, number, number?];
  if (step <= 0) throw axisError(axis, `${parameter}: the range ${text} needs a positive step`);
  const direction = to >= from ? 1 : -1;
  const count = Math.floor(Math.abs(to - from) / step + 1e-9) + 1;
  if (count > MAX_AXIS_VALUES) {
    throw axisError(
      axis,
      `${parameter}: the range ${text} gives ${count} values; at most ${MAX_AXIS_VALUES}`,
    );
  }
  // Rounded to 10 decimals so 0.1 steps print as 0.3, not 0.30000000000000004.
  return Array.from({ length: count }, (_, i) => String(Number((from + direction * i * step).toFixed(10))));
}

function parseValue(
  axis: AxisLetter,
  parameter: string,
  target: AxisTarget,
  text: string,
  context: AxisContext,
): AxisValue {
  const bad = (why: string, fix?: string) => axisError(axis, `${parameter} = ${text}: ${why}`, fix);
  switch (target.kind) {
    case "weight":
      return isNumberText(text) ? Number(text) : text;
    case "block":
      if (!isNumberText(text)) throw bad("a block weight is a number");
      return Number(text);
    case "preset": {
      if (!context.family) throw bad("a preset axis needs the inputs' family");
      try {
        return findPreset(text, context.family).name;
      } catch (error) {
        if (isGyozaError(error)) throw bad(error.message, error.fix);
        throw error;
      }
    }
    case "method":
      try {
        return findMethod(builtinMethods, text).id;
      } catch (error) {
        if (isGyozaError(error)) throw bad(error.message, error.fix);
        throw error;
      }
    case "input":
      return resolve(context.cwd ?? process.cwd(), text);
    case "generation":
      return parseGenerationValue(target.field, text, bad);
  }
}

function parseGenerationValue(
  field: GenerationField,
  text: string,
  bad: (why: string, fix?: string) => GyozaError,
): AxisValue {
  switch (field) {
    case "seed": {
      const seed = Number(text);
      // 0 … 2^32−1: what both backends take (A1111 keeps seeds in 32 bits).
      if (!/^\d+$/.test(text) || seed > 0xffff_ffff)
        throw bad("a seed is a whole number from 0 to 4294967295");
      return seed;
    }
    case "clip_skip": {
      const value = Number(text);
      if (!/^\d+$/.test(text) || value < 1 || value > 12)
        throw bad("clip skip is a whole number from 1 to 12");
      return value;
    }
    case "steps": {
      const value = Number(text);
      if (!/^\d+$/.test(text) || value < 1 || value > 1000)
        throw bad("steps is a whole number from 1 to 1000");
      return value;
    }
    case "cfg": {
      if (!isNumberText(text) || Number(text) < 0 || Number(text) > 100)
        throw bad("cfg is a number from 0 to 100");
      return Number(text);
    }
    case "size": {
      const size = imageSizeOf(text);
      if (!size) throw bad("a size is WIDTHxHEIGHT, each 64..8192 and a multiple of 8", "e.g. 512x768");
      return size;
    }
    case "prompt":
    case "negative":
      return text;
    case "vae":
    case "sampler":
    case "scheduler":
      if (text === "") throw bad("empty");
      return text;
  }
}

function isNumberText(text: string): boolean {
  return new RegExp(`^${NUMBER}$`).test(text);
}

function labelOf(parameter: string, target: AxisTarget, value: AxisValue): string {
  if (typeof value === "object") return `${parameter} = ${value.width}x${value.height}`;
  if (target.kind === "preset") {
    const name = parameter.replace(/preset$/i, "alpha");
    return `${name} = ${value}`;
  }
  if (target.kind === "input") return `${parameter} = ${basename(String(value))}`;
  return `${parameter} = ${value}`;
}

function checkRecipeValue(axis: GridAxis, index: number, context: AxisContext): void {
  try {
    validateRecipe(
      applyRecipeValue(structuredClone(context.recipe), axis.target, axis.values[index]!, context.family),
    );
  } catch (error) {
    if (!isGyozaError(error) || error.code === "io") throw error;
    const where = error.path ? ` (${error.path})` : "";
    throw axisError(axis.axis, `${axis.labels[index]}: ${error.message}${where}`, error.fix);
  }
}

/** Returns `recipe` with one recipe value applied (mutates and returns it). */
function applyRecipeValue(
  recipe: Recipe,
  target: AxisTarget,
  value: AxisValue,
  family: Family | undefined,
): Recipe {
  switch (target.kind) {
    case "input":
      // Another file: the recorded hashes were the old file's, so they go.
      recipe.inputs[target.input] = { path: String(value) };
      return recipe;
    case "method":
      recipe.steps[target.step]!.method = String(value);
      return recipe;
    case "preset":
      setParam(recipe.steps[target.step]!, "alpha", String(value));
      return recipe;
    case "weight":
      setParam(recipe.steps[target.step]!, target.param, value as number | string);
      return recipe;
    case "block": {
      const step = recipe.steps[target.step]!;
      if (!family) throw new GyozaError("usage", "a block axis needs the inputs' family");
      const method = findMethod(builtinMethods, step.method);
      const param = method.params.find((candidate) => candidate.name === "alpha");
      if (!param?.perBlock) {
        throw new GyozaError("usage", `method ${method.id} has no per-block alpha to set ${target.slot} in`);
      }
      const current = paramOf(step, "alpha") ?? param.default;
      const weights = { ...resolveWeights(current, family) };
      weights[target.slot] = value as number;
      setParam(
        step,
        "alpha",
        slotsOf(family).map((slot) => weights[slot]!),
      );
      return recipe;
    }
    case "generation":
      return recipe;
  }
}

function paramOf(step: RecipeStep, name: string): WeightSpec | undefined {
  if (name === "alpha" && step.alpha !== undefined) return step.alpha;
  if (name === "beta" && step.beta !== undefined) return step.beta;
  return step.params?.[name];
}

function setParam(step: RecipeStep, name: "alpha" | "beta", spec: WeightSpec): void {
  step[name] = spec;
  if (step.params && name in step.params) {
    const { [name]: _, ...rest } = step.params;
    if (Object.keys(rest).length === 0) delete step.params;
    else step.params = rest;
  }
}

function applyGeneration(params: GenerationParams, field: GenerationField, value: AxisValue): void {
  switch (field) {
    case "seed":
      params.seed = value as number;
      return;
    case "prompt":
      params.prompt = value as string;
      return;
    case "negative":
      params.negativePrompt = value as string;
      return;
    case "clip_skip":
      params.clipSkip = value as number;
      return;
    case "vae":
      if (value === "none" || value === "auto") delete params.vae;
      else params.vae = value as string;
      return;
    case "cfg":
      params.cfg = value as number;
      return;
    case "steps":
      params.steps = value as number;
      return;
    case "sampler":
      params.sampler = value as string;
      return;
    case "scheduler":
      params.scheduler = value as string;
      return;
    case "size": {
      const size = value as { width: number; height: number };
      params.width = size.width;
      params.height = size.height;
      return;
    }
  }
}

function axisError(axis: AxisLetter, message: string, fix?: string): GyozaError {
  return new GyozaError("usage", `--${axis}: ${message}`, fix ? { fix } : {});
}
