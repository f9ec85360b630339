/**
 * An automix search space (issue #24; format in ./FORMAT.md): the holes of a recipe as points of
 * the unit cube [0,1]^d that the optimizers search. Each free value is one coordinate, mapped
 * linearly onto its range; a choice of input model is one coordinate cut into equal buckets.
 * `toRecipe(x, base)` fills the holes of a base recipe and validates the result; `describe(x)`
 * says what a point means in recipe terms (block weights as supermerger's comma text).
 */
import { parseDocument } from "yaml";
import { GyozaError } from "../errors.js";
import { overrideSlots } from "../merge/elemental.js";
import { type Family, unetSlotsOf } from "../merge/index.js";
import { formatPath, type Recipe, type RecipeStep, validateRecipe } from "../recipe/index.js";
import type * as z from "../zod.js";
import type { OptimizerSpace } from "./optimizers/optimizer.js";
import { type SearchEntryData, type SearchSpaceData, searchSpaceSchema } from "./search-space-schema.js";

/** A search space is a small hand-written file; anything bigger is a mistake or hostile (CWE-400). */
export const MAX_SEARCH_SPACE_BYTES = 100_000;
const MAX_YAML_ALIASES = 100;
/** Values written into recipes are rounded to this many decimals (readable, and AutoV3 reuse finds repeats). */
const DECIMALS = 4;

/** One coordinate of the unit cube. */
export interface SearchDimension {
  /** `final.alpha.IN04`, `final.alpha.IN00-IN11 (shared)`, `final.beta`, `composition.b`. */
  readonly label: string;
  readonly low: number;
  readonly high: number;
  /** For a choice of input model: the recipe inputs it picks from. */
  readonly choices?: readonly string[];
}

/** Where a slot's value comes from: fixed, or a coordinate. */
type SlotSource = { readonly fixed: number } | { readonly dimension: number };

type Hole =
  | { readonly kind: "scalar"; readonly step: string; readonly param: string; readonly dimension: number }
  | {
      readonly kind: "blocks";
      readonly step: string;
      readonly param: string;
      readonly slots: readonly SlotSource[];
    }
  | { readonly kind: "input"; readonly step: string; readonly input: string; readonly dimension: number };

export class SearchSpace implements OptimizerSpace {
  readonly dimensions: number;
  readonly categories: readonly number[];

  /** Use SearchSpace.parse or SearchSpace.fromData. */
  constructor(
    readonly family: Family,
    readonly dimensionList: readonly SearchDimension[],
    private readonly holes: readonly Hole[],
    private readonly file: string | undefined,
  ) {
    this.dimensions = dimensionList.length;
    this.categories = dimensionList.map((d) => d.choices?.length ?? 0);
  }

  /** Parses a search space's YAML text; every error is a GyozaError "recipe" with its path. */
  static parse(text: string, file?: string): SearchSpace {
    if (Buffer.byteLength(text, "utf8") > MAX_SEARCH_SPACE_BYTES)
      throw new GyozaError("limit", `a search space is at most ${MAX_SEARCH_SPACE_BYTES} bytes`, { file });
    const document = parseDocument(text, { uniqueKeys: true });
    const problem = document.errors[0];
    if (problem) throw spaceError(`this is not valid YAML: ${problem.message.split("\n")[0]}`, "", file);
    let data: unknown;
    try {
      data = document.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (error) {
      throw spaceError(`this YAML cannot be used: ${(error as Error).message}`, "", file);
    }
    return SearchSpace.fromData(data, file);
  }

  /** Schema-checks already-parsed data and builds the space. */
  static fromData(data: unknown, file?: string): SearchSpace {
    const parsed = searchSpaceSchema.safeParse(data);
    if (!parsed.success) throw fromIssue(parsed.error.issues[0]!, file);
    return build(parsed.data, file);
  }

  /** The value of coordinate `i` at unit position `u` (clamped into [0,1]). */
  value(i: number, u: number): number {
    const d = this.dimensionList[i]!;
    const t = Math.min(1, Math.max(0, Number.isFinite(u) ? u : 0));
    if (d.choices) return Math.min(d.choices.length - 1, Math.floor(t * d.choices.length));
    return round(d.low + t * (d.high - d.low));
  }

  /** The base recipe with the holes filled from `x`, validated (a recipe error names the hole at fault). */
  toRecipe(x: readonly number[], base: Recipe): Recipe {
    this.checkPoint(x);
    const recipe = structuredClone(base);
    this.holes.forEach((hole, i) => {
      const path = `search[${i}]`;
      const step = recipe.steps[hole.step];
      if (!step)
        throw spaceError(
          `the recipe has no step "${hole.step}"`,
          `${path}.step`,
          this.file,
          `steps: ${Object.keys(recipe.steps).join(", ")}`,
        );
      if (hole.kind === "input") {
        if (!(hole.input in step.inputs))
          throw spaceError(
            `step "${hole.step}" has no input "${hole.input}"`,
            `${path}.input`,
            this.file,
            `its inputs: ${Object.keys(step.inputs).join(", ")}`,
          );
        const choice =
          this.dimensionList[hole.dimension]!.choices![this.value(hole.dimension, x[hole.dimension]!)]!;
        if (!(choice in recipe.inputs) && !(choice in recipe.steps))
          throw spaceError(
            `the choice "${choice}" is neither an input nor a step of the recipe`,
            `${path}.choices`,
            this.file,
          );
        step.inputs[hole.input] = choice;
        return;
      }
      setParam(step, hole.param, this.holeValue(hole, x));
    });
    validateRecipe(recipe, { file: this.file });
    return recipe;
  }

  /** What `x` means: one `step.param: values` (or `step.input: choice`) per hole, `; `-separated. */
  describe(x: readonly number[]): string {
    this.checkPoint(x);
    return this.holes
      .map((hole) => {
        if (hole.kind === "input") {
          const choice =
            this.dimensionList[hole.dimension]!.choices![this.value(hole.dimension, x[hole.dimension]!)];
          return `${hole.step}.${hole.input}: ${choice}`;
        }
        const value = this.holeValue(hole, x);
        return `${hole.step}.${hole.param}: ${Array.isArray(value) ? value.join(",") : value}`;
      })
      .join("; ");
  }

  private holeValue(hole: Exclude<Hole, { kind: "input" }>, x: readonly number[]): number | number[] {
    if (hole.kind === "scalar") return this.value(hole.dimension, x[hole.dimension]!);
    return hole.slots.map((s) => ("fixed" in s ? s.fixed : this.value(s.dimension, x[s.dimension]!)));
  }

  private checkPoint(x: readonly number[]): void {
    if (x.length !== this.dimensions)
      throw new GyozaError(
        "usage",
        `a point of this search space has ${this.dimensions} values, got ${x.length}`,
        { file: this.file },
      );
  }
}

function build(data: SearchSpaceData, file: string | undefined): SearchSpace {
  const family = data.family as Family;
  const slots = ["BASE", ...unetSlotsOf(family)];
  const dimensions: SearchDimension[] = [];
  const holes: Hole[] = data.search.map((entry, i) =>
    buildHole(entry, `search[${i}]`, family, slots, dimensions, file),
  );
  const seen = new Map<string, string>();
  holes.forEach((hole, i) => {
    const target = `${hole.step}.${hole.kind === "input" ? hole.input : hole.param}`;
    const earlier = seen.get(target);
    if (earlier)
      throw spaceError(
        `${target} is already searched by ${earlier}`,
        `search[${i}]`,
        file,
        "describe each weight or input once",
      );
    seen.set(target, `search[${i}]`);
  });
  if (dimensions.length === 0)
    throw spaceError(
      "nothing is left to search: every value is fixed",
      "search",
      file,
      "free at least one slot, weight or input",
    );
  return new SearchSpace(family, dimensions, holes, file);
}

function buildHole(
  entry: SearchEntryData,
  path: string,
  family: Family,
  slots: readonly string[],
  dimensions: SearchDimension[],
  file: string | undefined,
): Hole {
  if ((entry.param === undefined) === (entry.input === undefined))
    throw spaceError(
      "an entry searches either a weight (param) or an input model (input), not both or neither",
      path,
      file,
    );
  if (entry.input !== undefined) {
    if (!entry.choices || entry.choices.length < 2)
      throw spaceError(`choosing input "${entry.input}" needs at least two choices`, `${path}.choices`, file);
    if (entry.range || entry.blocks) throw spaceError("an input choice has no range or blocks", path, file);
    dimensions.push({
      label: `${entry.step}.${entry.input}`,
      low: 0,
      high: entry.choices.length - 1,
      choices: entry.choices,
    });
    return { kind: "input", step: entry.step, input: entry.input, dimension: dimensions.length - 1 };
  }
  const param = entry.param!;
  if (entry.choices) throw spaceError("choices belong to an input, not to a weight", `${path}.choices`, file);
  const [low, high] = checkRange(entry.range ?? [0, 1], `${path}.range`, file);
  const label = `${entry.step}.${param}`;
  if (entry.blocks === undefined) {
    dimensions.push({ label, low, high });
    return { kind: "scalar", step: entry.step, param, dimension: dimensions.length - 1 };
  }
  // Per slot: fixed, or the coordinate it reads (a shared rule's slots read one); coordinates are
  // numbered in slot order, so BASE, IN00, … stay in that order for the optimizers.
  type Pending =
    | { readonly fixed: number }
    | { readonly key: string; readonly low: number; readonly high: number; readonly name: string };
  const pending: (Pending | undefined)[] = new Array(slots.length).fill(undefined);
  const chosenBy: (string | undefined)[] = new Array(slots.length).fill(undefined);
  (entry.blocks === true ? [] : entry.blocks).forEach((rule, r) => {
    const rulePath = `${path}.blocks[${r}]`;
    const selected = selectSlots(rule.slots, family, slots, `${rulePath}.slots`, file);
    if (rule.fixed !== undefined && (rule.range !== undefined || rule.shared))
      throw spaceError("a fixed slot has no range and is not shared", rulePath, file);
    if (rule.fixed === undefined && !rule.shared && rule.range === undefined)
      throw spaceError(
        `the rule for "${rule.slots}" says nothing: give fixed, range or shared`,
        rulePath,
        file,
      );
    for (const index of selected) {
      if (chosenBy[index])
        throw spaceError(
          `${slots[index]} is already chosen by ${chosenBy[index]}`,
          `${rulePath}.slots`,
          file,
          "name each slot in one rule",
        );
      chosenBy[index] = rulePath;
    }
    if (rule.fixed !== undefined) {
      if (!Number.isFinite(rule.fixed))
        throw spaceError("a fixed value is a finite number", `${rulePath}.fixed`, file);
      for (const index of selected) pending[index] = { fixed: rule.fixed };
      return;
    }
    const [ruleLow, ruleHigh] = checkRange(rule.range ?? [low, high], `${rulePath}.range`, file);
    const names = selected.map((index) => slots[index]!);
    const sharedName = names.length > 1 ? `${names[0]}-${names.at(-1)} (shared)` : names[0]!;
    for (const index of selected)
      pending[index] = rule.shared
        ? { key: rulePath, low: ruleLow, high: ruleHigh, name: sharedName }
        : { key: slots[index]!, low: ruleLow, high: ruleHigh, name: slots[index]! };
  });
  const coordinateOf = new Map<string, number>();
  const sources: SlotSource[] = slots.map((slot, index) => {
    // Slots no rule names are free in the entry's range.
    const source = pending[index] ?? { key: slot, low, high, name: slot };
    if ("fixed" in source) return source;
    let dimension = coordinateOf.get(source.key);
    if (dimension === undefined) {
      dimensions.push({ label: `${label}.${source.name}`, low: source.low, high: source.high });
      dimension = dimensions.length - 1;
      coordinateOf.set(source.key, dimension);
    }
    return { dimension };
  });
  return { kind: "blocks", step: entry.step, param, slots: sources };
}

/** Slot indices (BASE + UNet) a selector names: the recipe's override syntax, plus `IN`, `OUT` and `A..B`. */
function selectSlots(
  selector: string,
  family: Family,
  slots: readonly string[],
  path: string,
  file: string | undefined,
): number[] {
  const unet = unetSlotsOf(family);
  const firstOut = unet.findIndex((s) => s.startsWith("OUT"));
  const words: Record<string, string> = {
    IN: `${unet[0]}-${unet[firstOut - 2]}`,
    OUT: `${unet[firstOut]}-${unet.at(-1)}`,
    M: "M00",
  };
  const text = selector
    .replaceAll("..", "-")
    .split(/\s+/)
    .map((token) => words[token.toUpperCase()] ?? token)
    .join(" ");
  let selected: ReadonlySet<string>;
  try {
    selected = overrideSlots(text, family, path);
  } catch {
    throw spaceError(
      `"${selector}" names no ${family} block or block range`,
      path,
      file,
      `use BASE, IN, OUT, M00, ranges like ${unet[4]}-${unet[8]} or OUT03..OUT05, *, NOT …`,
    );
  }
  const indices = slots.map((slot, i) => (selected.has(slot) ? i : -1)).filter((i) => i >= 0);
  if (indices.length === 0) throw spaceError(`"${selector}" selects no slot`, path, file);
  return indices;
}

function checkRange(
  range: readonly [number, number],
  path: string,
  file: string | undefined,
): [number, number] {
  const [low, high] = range;
  if (!Number.isFinite(low) || !Number.isFinite(high) || low >= high)
    throw spaceError(`a range is [low, high] with low below high, got [${low}, ${high}]`, path, file);
  return [low, high];
}

function setParam(step: RecipeStep, param: string, value: number | number[]): void {
  if ((param === "alpha" || param === "beta") && step.params?.[param] === undefined) step[param] = value;
  else step.params = { ...step.params, [param]: value };
}

function round(value: number): number {
  return Number(value.toFixed(DECIMALS));
}

function spaceError(message: string, path: string, file: string | undefined, fix?: string): GyozaError {
  return new GyozaError("recipe", message, { file, path, fix });
}

function fromIssue(issue: z.core.$ZodIssue, file: string | undefined): GyozaError {
  const path = formatPath(issue.path);
  if (issue.code === "unrecognized_keys") return spaceError(`unknown field "${issue.keys[0]}"`, path, file);
  if (path === "automix") return spaceError(`a search space starts with "automix: 1"`, path, file);
  return spaceError(issue.message, path, file);
}
