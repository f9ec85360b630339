import { asObject } from "./merge-recipes.js";

/**
 * Readers for the steps of a gyoza recipe recorded in `__metadata__.gyoza_recipe`. The record
 * comes from a file, so it is read as untrusted JSON: only own fields, anything odd skipped.
 */

/** What a lineage shows of one step: its line, name, method and the weights that made it. */
export interface GyozaStepRecord {
  summary: string;
  step: string;
  method: string;
  weights: Record<string, unknown>;
}

/** A recorded object's own field: names such as `__proto__` in a hostile recipe reach nothing inherited. */
export function ownField(object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** The step a recipe writes: `output.step`, else its one step no other step uses; null when neither tells. */
export function outputStep(
  steps: Record<string, unknown>,
  output: Record<string, unknown> | null,
): string | null {
  if (typeof output?.step === "string") return asObject(ownField(steps, output.step)) ? output.step : null;
  const used = new Set(
    Object.values(steps).flatMap((step) => Object.values(asObject(asObject(step)?.inputs) ?? {}).map(String)),
  );
  const finals = Object.keys(steps).filter((name) => !used.has(name) && asObject(ownField(steps, name)));
  return finals.length === 1 ? finals[0]! : null;
}

/** Weights and parameters a step records (the numbers that made it): alpha, beta, params, overrides. */
function stepWeights(step: Record<string, unknown>): Record<string, unknown> {
  const entries: [string, unknown][] = [];
  for (const param of ["alpha", "beta"]) {
    if (ownField(step, param) !== undefined) entries.push([param, step[param]]);
  }
  entries.push(...Object.entries(asObject(ownField(step, "params")) ?? {}));
  const overrides = ownField(step, "overrides");
  if (Array.isArray(overrides) && overrides.length > 0) entries.push(["overrides", overrides]);
  // fromEntries defines fields: a recorded "__proto__" parameter stays a plain field
  return Object.fromEntries(entries);
}

/** "final = weighted_sum(a: texture, b: composition, alpha COSINE)". */
function stepLine(name: string, step: Record<string, unknown>, weights: Record<string, unknown>): string {
  const inputs = Object.entries(asObject(ownField(step, "inputs")) ?? {}).map(
    ([slot, from]) => `${slot}: ${String(from)}`,
  );
  const values = Object.entries(weights).map(
    ([param, value]) => `${param} ${typeof value === "object" ? JSON.stringify(value) : String(value)}`,
  );
  return `${name} = ${String(ownField(step, "method"))}(${[...inputs, ...values].join(", ")})`;
}

/** One step as the lineage shows it. */
export function describeGyozaStep(name: string, step: Record<string, unknown>): GyozaStepRecord {
  const weights = stepWeights(step);
  return {
    summary: `gyoza: ${stepLine(name, step, weights)}`,
    step: name,
    method: String(ownField(step, "method")),
    weights,
  };
}

/** Every step of a recipe on one line, for a recipe whose output step cannot be told. */
export function describeGyozaSteps(recipe: Record<string, unknown>): string {
  const steps = Object.entries(asObject(recipe.steps) ?? {}).map(([name, value]) => {
    const step = asObject(value) ?? {};
    return stepLine(name, step, stepWeights(step));
  });
  return `gyoza: ${steps.join("; ") || "no steps recorded"}`;
}
