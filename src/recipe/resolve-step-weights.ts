import { GyozaError } from "../errors.js";
import {
  builtinMethods,
  builtinPresets,
  type Family,
  findMethod,
  type KeyWeights,
  keyWeights,
  type MethodRegistry,
  type PresetTable,
  resolveWeights,
  type Slot,
  type SlotWeights,
  slotOfKey,
  type WeightSpec,
} from "../merge/index.js";
import type { RecipeStep } from "./recipe-types.js";

export interface ResolveStepOptions {
  methods?: MethodRegistry;
  presets?: ReadonlyMap<Family, PresetTable>;
  /**
   * VAE policy "merge": the slot whose weights the `first_stage_model.*` tensors take instead of
   * the block rule's slot.
   */
  vaeSlot?: Slot;
  /** Where the step sits in the recipe (`steps.texture`), for error messages. */
  path?: string;
}

/** Every method parameter's value for one key; null when the key is not merged (copied from A). */
export type StepWeights = (key: string) => Record<string, number> | null;

const VAE_PREFIX = "first_stage_model.";

/**
 * Resolves a step's weights for a family once, and answers per key: per-block parameters through
 * the block rule and elemental overrides, whole-model parameters as their number, defaults for
 * what the step leaves out.
 */
export function resolveStepWeights(
  step: RecipeStep,
  family: Family,
  options: ResolveStepOptions = {},
): StepWeights {
  const method = findMethod(options.methods ?? builtinMethods, step.method);
  const path = options.path ?? "step";
  const rule = step.block_rule ?? "classic";
  const fixed: Record<string, number> = {};
  const perBlock: { name: string; byKey: KeyWeights; vae: number | undefined }[] = [];
  for (const param of method.params) {
    const given = specFor(step, param.name);
    const spec: WeightSpec = given?.spec ?? param.default;
    const specPath = given ? `${path}.${given.path}` : path;
    if (!param.perBlock) {
      fixed[param.name] = spec as number;
      continue;
    }
    const weights = resolveWeights(spec, family, {
      path: specPath,
      presets: options.presets ?? builtinPresets,
    });
    const byKey = keyWeights(weights, family, rule, step.overrides ?? [], param.name);
    perBlock.push({ name: param.name, byKey, vae: vaeWeight(weights, options.vaeSlot, family) });
  }
  return (key) => {
    if (slotOfKey(key, family, rule) === null) return null;
    const values: Record<string, number> = { ...fixed };
    const isVae = key.startsWith(VAE_PREFIX);
    for (const { name, byKey, vae } of perBlock) {
      values[name] = isVae && vae !== undefined ? vae : byKey.weightForKey(key)!;
    }
    return values;
  };
}

function vaeWeight(weights: SlotWeights, slot: Slot | undefined, family: Family): number | undefined {
  if (slot === undefined) return undefined;
  const value = weights[slot.toUpperCase()];
  if (value === undefined) {
    throw new GyozaError("recipe", `"${slot}" is not a ${family} slot`, { path: "output.vae.slot" });
  }
  return value;
}

function specFor(step: RecipeStep, name: string): { spec: WeightSpec; path: string } | undefined {
  if (name === "alpha" && step.alpha !== undefined) return { spec: step.alpha, path: "alpha" };
  if (name === "beta" && step.beta !== undefined) return { spec: step.beta, path: "beta" };
  const spec = step.params?.[name];
  return spec === undefined ? undefined : { spec, path: `params.${name}` };
}
