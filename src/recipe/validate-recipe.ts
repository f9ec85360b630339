import { GyozaError, isGyozaError } from "../errors.js";
import {
  blockSelectorNames,
  builtinMethods,
  checkSpaces,
  FAMILIES,
  type Family,
  findMethod,
  type MergeMethod,
  type MergeSpace,
  type MethodRegistry,
  parseLoraBlockWeights,
  resolveWeights,
  slotsOf,
  type WeightSpec,
} from "../merge/index.js";
import { finalSteps, topologicalSteps } from "./recipe-dag.js";
import { recipeError, unknownNameError } from "./recipe-errors.js";
import type { Recipe, RecipeStep } from "./recipe-types.js";

export interface ValidateOptions {
  methods?: MethodRegistry;
  /** Source name for error messages. */
  file?: string;
}

/**
 * The checks a schema cannot express: references exist (with did-you-mean), steps form a DAG,
 * merge spaces fit, parameters exist and their weights are valid for at least one family, the
 * output step and VAE policy make sense. Returns the output step's name.
 */
export function validateRecipe(recipe: Recipe, options: ValidateOptions = {}): string {
  const methods = options.methods ?? builtinMethods;
  const file = options.file;
  if (Object.keys(recipe.inputs).length === 0)
    throw recipeError("a recipe needs at least one input", "inputs", file);
  if (Object.keys(recipe.steps).length === 0)
    throw recipeError("a recipe needs at least one step", "steps", file);
  for (const name of Object.keys(recipe.steps)) {
    if (name in recipe.inputs) {
      throw recipeError(`"${name}" is both an input and a step`, `steps.${name}`, file, "rename one of them");
    }
  }
  const outputSpace = new Map<string, MergeSpace>(Object.keys(recipe.inputs).map((name) => [name, "weight"]));
  const stepMethods = new Map<string, MergeMethod>();
  for (const [name, step] of Object.entries(recipe.steps)) {
    const method = withFile(file, () => findMethod(methods, step.method, `steps.${name}.method`));
    stepMethods.set(name, method);
    outputSpace.set(name, method.output);
  }
  for (const [name, step] of Object.entries(recipe.steps))
    checkReferences(recipe, name, step, stepMethods.get(name)!, file);
  checkLoras(recipe, stepMethods, file);
  topologicalSteps(recipe, file);
  for (const [name, step] of Object.entries(recipe.steps)) {
    const method = stepMethods.get(name)!;
    const spaces = method.inputs.map((input) => outputSpace.get(step.inputs[input.name]!)!);
    withFile(file, () => checkSpaces(method, spaces, `steps.${name}.inputs`));
    checkParams(name, step, method, file);
  }
  const output = checkOutputStep(recipe, file);
  if (outputSpace.get(output) !== "weight") {
    throw recipeError(
      `step "${output}" gives a delta, which is not a model to save`,
      "output.step",
      file,
      "apply it to a model with add_delta first",
    );
  }
  checkVae(recipe, file);
  return output;
}

function withFile<T>(file: string | undefined, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw isGyozaError(error) ? addFile(error, file) : error;
  }
}

function addFile(error: GyozaError, file: string | undefined): GyozaError {
  if (file === undefined || error.file !== undefined) return error;
  return new GyozaError(error.code, error.message, {
    file,
    path: error.path,
    fix: error.fix,
    cause: error.cause,
  });
}

function checkReferences(
  recipe: Recipe,
  name: string,
  step: RecipeStep,
  method: MergeMethod,
  file?: string,
): void {
  const expected = method.inputs.map((input) => input.name);
  for (const key of Object.keys(step.inputs)) {
    if (!expected.includes(key)) {
      throw unknownNameError(`input of ${method.id}`, key, expected, `steps.${name}.inputs.${key}`, file);
    }
  }
  for (const key of expected) {
    const ref = step.inputs[key];
    if (ref === undefined) {
      throw recipeError(
        `${method.id} needs input "${key}"`,
        `steps.${name}.inputs`,
        file,
        `give ${expected.join(", ")}`,
      );
    }
    if (!(ref in recipe.inputs) && !(ref in recipe.steps)) {
      const candidates = [
        ...Object.keys(recipe.inputs),
        ...Object.keys(recipe.steps).filter((s) => s !== name),
      ];
      throw unknownNameError("input or step", ref, candidates, `steps.${name}.inputs.${key}`, file);
    }
  }
}

/**
 * A step bakes LoRAs exactly when its method does (add_lora); each names a recipe input (whose file
 * is a LoRA, so no step takes it as a model), a ratio and valid block weights.
 */
function checkLoras(recipe: Recipe, methods: ReadonlyMap<string, MergeMethod>, file?: string): void {
  const loraInputs = new Map<string, string>();
  for (const [name, step] of Object.entries(recipe.steps)) {
    const method = methods.get(name)!;
    const loras = step.loras ?? [];
    if (!method.bakesLoras && step.loras !== undefined) {
      throw recipeError(`${method.id} bakes no LoRAs`, `steps.${name}.loras`, file, "use method: add_lora");
    }
    if (method.bakesLoras && loras.length === 0) {
      throw recipeError(
        `${method.id} needs at least one LoRA`,
        `steps.${name}.loras`,
        file,
        "add loras: [{input: my_lora, ratio: 0.6}], my_lora being an input whose file is the LoRA",
      );
    }
    loras.forEach((lora, i) => {
      const path = `steps.${name}.loras[${i}]`;
      if (lora.input in recipe.steps) {
        throw recipeError(
          `"${lora.input}" is a step: a LoRA is a recipe input whose file is a LoRA`,
          `${path}.input`,
          file,
        );
      }
      if (!(lora.input in recipe.inputs))
        throw unknownNameError("input", lora.input, Object.keys(recipe.inputs), `${path}.input`, file);
      if (!Number.isFinite(lora.ratio))
        throw recipeError(`the ratio is ${lora.ratio}`, `${path}.ratio`, file);
      const weights: unknown = lora.weights;
      if (Array.isArray(weights)) {
        const bad = weights.findIndex((value) => typeof value !== "number");
        if (bad >= 0)
          throw recipeError(
            `block weight ${bad + 1} ${JSON.stringify(weights[bad])} is not a number`,
            `${path}.weights[${bad}]`,
            file,
          );
      } else if (weights !== undefined && typeof weights !== "string") {
        throw recipeError(
          "block weights are a list of numbers, comma-separated text or a preset name",
          `${path}.weights`,
          file,
        );
      }
      withFile(file, () => parseLoraBlockWeights(lora.weights, { where: `${path}.weights`, code: "recipe" }));
      loraInputs.set(lora.input, path);
    });
  }
  for (const [name, step] of Object.entries(recipe.steps)) {
    for (const [role, ref] of Object.entries(step.inputs)) {
      const usedAt = loraInputs.get(ref);
      if (usedAt) {
        throw recipeError(
          `input "${ref}" is baked in as a LoRA (${usedAt}), so it cannot also be merged as a model`,
          `steps.${name}.inputs.${role}`,
          file,
          "a LoRA file goes only under loras:; give the model input here",
        );
      }
    }
  }
}

function checkParams(name: string, step: RecipeStep, method: MergeMethod, file?: string): void {
  const known = method.params.map((param) => param.name);
  const given: [string, WeightSpec, string][] = [];
  for (const shorthand of ["alpha", "beta"] as const) {
    const spec = step[shorthand];
    if (spec === undefined) continue;
    if (!known.includes(shorthand)) {
      throw recipeError(
        `${method.id} has no ${shorthand}`,
        `steps.${name}.${shorthand}`,
        file,
        paramsFix(method),
      );
    }
    if (step.params?.[shorthand] !== undefined) {
      throw recipeError(`${shorthand} is given twice`, `steps.${name}.params.${shorthand}`, file);
    }
    given.push([shorthand, spec, `steps.${name}.${shorthand}`]);
  }
  for (const [param, spec] of Object.entries(step.params ?? {})) {
    if (!known.includes(param)) {
      throw unknownNameError(
        `parameter of ${method.id}`,
        param,
        known,
        `steps.${name}.params.${param}`,
        file,
      );
    }
    given.push([param, spec, `steps.${name}.params.${param}`]);
  }
  for (const [param, spec, path] of given)
    checkWeightSpec(method, param, spec, path, file, step.extrapolate === true);
  (step.overrides ?? []).forEach((override, i) => {
    const path = `steps.${name}.overrides[${i}]`;
    const param = override.param ?? "alpha";
    const definition = method.params.find((p) => p.name === param);
    if (!definition?.perBlock) {
      throw recipeError(
        `${method.id} has no per-block parameter "${param}"`,
        `${path}.param`,
        file,
        paramsFix(method),
      );
    }
    checkBlock(override.block, `${path}.block`, file);
    if (definition.interpolates && step.extrapolate !== true && (override.value < 0 || override.value > 1)) {
      throw recipeError(
        `${param} = ${override.value} is outside 0..1: that extrapolates past the inputs`,
        `${path}.value`,
        file,
        "if you mean it, add `extrapolate: true` to the step (command line: --allow-extrapolation)",
      );
    }
  });
}

function paramsFix(method: MergeMethod): string {
  return method.params.length === 0
    ? `${method.id} takes no parameters`
    : `parameters of ${method.id}: ${method.params.map((p) => p.name).join(", ")}`;
}

/**
 * A weight is valid when it resolves for at least one family, within the parameter's range, and
 * (for mixing weights) inside 0..1 unless the step allows extrapolation.
 */
function checkWeightSpec(
  method: MergeMethod,
  param: string,
  spec: WeightSpec,
  path: string,
  file: string | undefined,
  extrapolate: boolean,
): void {
  const definition = method.params.find((p) => p.name === param)!;
  if (!definition.perBlock && typeof spec !== "number") {
    throw recipeError(`${param} is one number for the whole model, not a per-block weight`, path, file);
  }
  let firstError: GyozaError | undefined;
  for (const family of FAMILIES) {
    try {
      const weights = resolveWeights(spec, family, { path });
      for (const [slot, value] of Object.entries(weights)) {
        const outOfRange =
          (definition.min !== undefined && value < definition.min) ||
          (definition.max !== undefined && value > definition.max);
        if (outOfRange) {
          throw recipeError(
            `${param} = ${value} at ${slot} is outside ${definition.min ?? "−∞"}..${definition.max ?? "∞"}`,
            path,
            file,
          );
        }
      }
      if (definition.interpolates && !extrapolate) checkInterpolates(param, weights, path, file);
      return;
    } catch (error) {
      if (!isGyozaError(error, "recipe")) throw error;
      firstError ??= error;
    }
  }
  throw addFile(firstError!, file);
}

function checkInterpolates(
  param: string,
  weights: Readonly<Record<string, number>>,
  path: string,
  file?: string,
): void {
  const outside = Object.entries(weights).filter(([, value]) => value < 0 || value > 1);
  if (outside.length === 0) return;
  const listed = outside.slice(0, 6).map(([slot, value]) => `${slot} ${value}`);
  if (outside.length > listed.length) listed.push(`and ${outside.length - listed.length} more`);
  throw recipeError(
    `${param} is outside 0..1 at ${listed.join(", ")}: that extrapolates past the inputs`,
    path,
    file,
    "if you mean it, add `extrapolate: true` to the step (command line: --allow-extrapolation)",
  );
}

function checkBlock(block: string, path: string, file?: string): void {
  const slots = new Set(FAMILIES.flatMap((family: Family) => slotsOf(family)));
  for (const part of blockSelectorNames(block)) {
    if (!slots.has(part)) throw unknownNameError("block", part, slots, path, file);
  }
}

function checkOutputStep(recipe: Recipe, file?: string): string {
  const step = recipe.output.step;
  if (step !== undefined) {
    if (!(step in recipe.steps))
      throw unknownNameError("step", step, Object.keys(recipe.steps), "output.step", file);
    return step;
  }
  const finals = finalSteps(recipe);
  if (finals.length === 1) return finals[0]!;
  throw recipeError(
    `several steps are final (${finals.join(", ")}): name the one to save`,
    "output.step",
    file,
    `add "step: ${finals.at(-1)}" under output`,
  );
}

function checkVae(recipe: Recipe, file?: string): void {
  const vae = recipe.output.vae;
  if (vae.policy === "bake" && vae.file === undefined) {
    throw recipeError("the bake policy needs a VAE file", "output.vae.file", file);
  }
  if (vae.policy !== "bake" && vae.file !== undefined) {
    throw recipeError(
      `a VAE file is only used by the bake policy, not ${vae.policy}`,
      "output.vae.file",
      file,
    );
  }
  if (vae.policy !== "merge" && vae.slot !== undefined) {
    throw recipeError(
      `a VAE slot is only used by the merge policy, not ${vae.policy}`,
      "output.vae.slot",
      file,
    );
  }
  if (vae.policy === "merge" && vae.slot !== undefined) checkBlock(vae.slot, "output.vae.slot", file);
}
