import { recipeError } from "./recipe-errors.js";
import type { Recipe } from "./recipe-types.js";

/**
 * Steps in an order where every step comes after the steps it uses (declaration order where
 * free). Throws a recipe error naming the cycle when there is one.
 */
export function topologicalSteps(recipe: Pick<Recipe, "steps">, file?: string): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, trail: string[]): void => {
    const seen = state.get(name);
    if (seen === "done") return;
    if (seen === "visiting") {
      const cycle = [...trail.slice(trail.indexOf(name)), name];
      throw recipeError(`steps form a cycle: ${cycle.join(" → ")}`, `steps.${name}.inputs`, file);
    }
    state.set(name, "visiting");
    for (const ref of Object.values(recipe.steps[name]!.inputs)) {
      if (ref in recipe.steps) visit(ref, [...trail, name]);
    }
    state.set(name, "done");
    order.push(name);
  };
  for (const name of Object.keys(recipe.steps)) visit(name, []);
  return order;
}

/** Steps no other step uses: the candidates for the output. */
export function finalSteps(recipe: Pick<Recipe, "steps">): string[] {
  const used = new Set(Object.values(recipe.steps).flatMap((step) => Object.values(step.inputs)));
  return Object.keys(recipe.steps).filter((name) => !used.has(name));
}

/**
 * The recipe input reached by following input `inputName` of `stepName` through earlier steps
 * (their first input each time): "A's VAE" of a multi-step recipe is the VAE of this file.
 */
export function rootInput(recipe: Recipe, stepName: string, inputName: string): string | undefined {
  let ref: string | undefined = recipe.steps[stepName]?.inputs[inputName];
  const seen = new Set<string>();
  while (ref !== undefined && ref in recipe.steps && !seen.has(ref)) {
    seen.add(ref);
    ref = Object.values(recipe.steps[ref]!.inputs)[0];
  }
  return ref !== undefined && ref in recipe.inputs ? ref : undefined;
}
