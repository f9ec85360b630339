import { didYouMean, GyozaError } from "../errors.js";
import type * as z from "../zod.js";
import { KNOWN_KEYS } from "./recipe-schema.js";
import { RECIPE_VERSION } from "./recipe-types.js";

/** `["steps", "texture", "params", "alpha", 3]` → `steps.texture.params.alpha[3]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else text += text === "" ? String(part) : `.${String(part)}`;
  }
  return text;
}

export function recipeError(
  message: string,
  path: string | readonly PropertyKey[],
  file?: string,
  fix?: string,
) {
  return new GyozaError("recipe", message, {
    file,
    path: typeof path === "string" ? path : formatPath(path),
    fix,
  });
}

/** Unknown reference → recipe error with "did you mean" among the candidates. */
export function unknownNameError(
  kind: string,
  name: string,
  candidates: Iterable<string>,
  path: string,
  file?: string,
): GyozaError {
  const list = [...candidates];
  const guess = didYouMean(name, list);
  const fix = guess
    ? `did you mean "${guess}"?`
    : list.length > 0
      ? `known ${kind}s: ${list.join(", ")}`
      : undefined;
  return recipeError(`unknown ${kind} "${name}"`, path, file, fix);
}

function knownKeysAt(path: readonly PropertyKey[]): readonly string[] {
  const [first, , third] = path;
  if (path.length === 0) return KNOWN_KEYS.recipe;
  if (first === "inputs" && path.length === 2) return KNOWN_KEYS.input;
  if (first === "steps" && path.length === 2) return KNOWN_KEYS.step;
  if (first === "steps" && third === "overrides" && path.length === 4) return KNOWN_KEYS.override;
  if (first === "steps" && third === "loras" && path.length === 4) return KNOWN_KEYS.lora;
  if (first === "output" && path.length === 1) return KNOWN_KEYS.output;
  if (first === "output" && path[1] === "vae" && path.length === 2) return KNOWN_KEYS.vae;
  return [];
}

/** The first zod issue as a GyozaError: the path inside the recipe, and a fix where one is known. */
export function fromZodIssue(issue: z.core.$ZodIssue, input: unknown, file?: string): GyozaError {
  const path = issue.path;
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0]!;
    const known = knownKeysAt(path);
    const guess = didYouMean(key, known);
    return recipeError(
      `unknown field "${key}"`,
      [...path, key],
      file,
      guess ? `did you mean "${guess}"?` : known.length > 0 ? `fields here: ${known.join(", ")}` : undefined,
    );
  }
  if (path.length === 1 && path[0] === "gyoza") {
    const version = (input as { gyoza?: unknown } | null)?.gyoza;
    return version === undefined
      ? recipeError(
          `missing the format version`,
          "gyoza",
          file,
          `start the recipe with "gyoza: ${RECIPE_VERSION}"`,
        )
      : recipeError(
          `unsupported recipe version ${JSON.stringify(version)}; this gyoza reads version ${RECIPE_VERSION}`,
          "gyoza",
          file,
        );
  }
  const value = valueAt(input, path);
  if (issue.code === "invalid_type" && value === undefined) {
    return recipeError(`missing required field`, path, file);
  }
  if (issue.code === "invalid_value" && "values" in issue) {
    const options = issue.values.map(String);
    const guess = didYouMean(String(value), options);
    return recipeError(
      `${JSON.stringify(value)} is not one of ${options.join(", ")}`,
      path,
      file,
      guess ? `did you mean "${guess}"?` : undefined,
    );
  }
  return recipeError(plainIssue(issue, value), path, file);
}

/** zod's wording ("Invalid input: expected number, received string") in the recipe's own terms. */
function plainIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const given =
    value === null
      ? "null"
      : Array.isArray(value)
        ? "a list"
        : typeof value === "object"
          ? "a mapping"
          : JSON.stringify(value);
  switch (issue.code) {
    case "invalid_type": {
      const expected = EXPECTED_WORDS[issue.expected] ?? issue.expected;
      return `expected ${expected}, got ${given}`;
    }
    case "too_small":
      return `${given} is too small: the least allowed is ${String(issue.minimum)}`;
    case "too_big":
      return `${given} is too large: the most allowed is ${String(issue.maximum)}`;
    case "invalid_format":
      // our own regex checks carry their own message (names, hex digits)
      return issue.message;
    default:
      return `${given} is not allowed here`;
  }
}

const EXPECTED_WORDS: Readonly<Record<string, string>> = {
  number: "a number",
  int: "a whole number",
  string: "text",
  boolean: "true or false",
  object: "a mapping",
  array: "a list",
  record: "a mapping",
};

/** zod does not report the offending value unless asked; read it back from the parsed data. */
function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = data;
  for (const part of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}
