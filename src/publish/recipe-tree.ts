import { basename } from "node:path";
import { isGyozaError } from "../errors.js";
import type { WeightSpec } from "../merge/index.js";
import { finalSteps, loadRecipe, type Recipe } from "../recipe/index.js";

/** Steps deeper than this are cut (a recipe is validated acyclic; this only bounds the text). */
const MAX_TREE_DEPTH = 32;

/**
 * A recipe as a tree a reader can follow, from the written step down to the input files:
 *
 *     final: weighted_sum, alpha COSINE
 *     ├─ a: texture (texture-tuned.safetensors)
 *     └─ b: composition: weighted_sum, alpha REVERSE_COSINE
 *        ├─ a: anime_detail (anime-detail.safetensors)
 *        └─ b: composition_model (composition.safetensors)
 *
 * Undefined when the text is not a recipe gyoza can load (the card then shows the YAML only).
 */
export function recipeTree(text: string, sourceName?: string): string | undefined {
  let recipe: Recipe;
  try {
    recipe = loadRecipe(text, sourceName ? { sourceName } : {});
  } catch (error) {
    if (isGyozaError(error)) return undefined;
    throw error;
  }
  const top = recipe.output.step ?? finalSteps(recipe)[0];
  if (top === undefined) return undefined;
  const lines = [`${top}: ${stepSummary(recipe, top)}`];
  addChildren(recipe, top, "", lines, 1);
  const vae = recipe.output.vae;
  const finish = [
    `dtype ${recipe.output.dtype}`,
    recipe.output.prune ? "pruned" : "",
    vae.policy === "bake" && vae.file ? `VAE baked from ${basename(vae.file)}` : `VAE ${vae.policy}`,
  ].filter(Boolean);
  lines.push(`output: ${finish.join(", ")}`);
  return lines.join("\n");
}

function addChildren(recipe: Recipe, stepName: string, indent: string, lines: string[], depth: number): void {
  const step = recipe.steps[stepName]!;
  const children: [string, string][] = [
    ...Object.entries(step.inputs),
    ...(step.loras ?? []).map((lora): [string, string] => [`lora ×${lora.ratio}`, lora.input]),
  ];
  children.forEach(([slot, ref], index) => {
    const last = index === children.length - 1;
    const branch = `${indent}${last ? "└─ " : "├─ "}${slot}: `;
    const input = recipe.inputs[ref];
    if (input) {
      lines.push(`${branch}${ref} (${basename(input.path)})`);
    } else if (recipe.steps[ref] && depth < MAX_TREE_DEPTH) {
      lines.push(`${branch}${ref}: ${stepSummary(recipe, ref)}`);
      addChildren(recipe, ref, `${indent}${last ? "   " : "│  "}`, lines, depth + 1);
    } else {
      lines.push(`${branch}${ref}`);
    }
  });
}

function stepSummary(recipe: Recipe, stepName: string): string {
  const step = recipe.steps[stepName]!;
  const weights = [
    step.alpha !== undefined ? `alpha ${weightText(step.alpha)}` : "",
    step.beta !== undefined ? `beta ${weightText(step.beta)}` : "",
    ...Object.entries(step.params ?? {}).map(([name, value]) => `${name} ${weightText(value)}`),
  ].filter(Boolean);
  return [step.method, ...weights].join(", ");
}

function weightText(spec: WeightSpec): string {
  if (typeof spec === "number" || typeof spec === "string") return String(spec);
  if (isNumberList(spec)) return `[${spec.join(", ")}]`;
  const base = "base" in spec && spec.base !== undefined ? ` (BASE ${spec.base})` : "";
  if ("preset" in spec) return `${spec.preset}${base}`;
  if ("value" in spec) return `${spec.value}${base}`;
  if ("values" in spec && isNumberList(spec.values)) return `[${spec.values.join(", ")}]${base}`;
  if ("curve" in spec) return `${spec.curve} ${spec.min ?? 0}..${spec.max ?? 1}${base}`;
  return JSON.stringify(spec);
}

function isNumberList(value: unknown): value is readonly number[] {
  return Array.isArray(value);
}
