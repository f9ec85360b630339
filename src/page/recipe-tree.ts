import type { Recipe, RecipeStep } from "../recipe/index.js";
import { blockWeightChart, stepCurves, weightSpecText } from "./block-weight-chart.js";
import { escapeHtml, formatWeight } from "./html-text.js";
import type { PageRecipe } from "./model-page-data.js";

/** How deep the tree follows steps: a recipe is a DAG checked for cycles on load, this only guards a hostile one. */
const MAX_TREE_DEPTH = 32;

/**
 * A recipe as a tree read from the output down (composition → texture → VAE for GyozaMix): the
 * output with its finishing (dtype, prune, VAE), the step it writes, and each step's inputs, which
 * are earlier steps (nested) or model files (leaves); then one block-weight chart per MBW step.
 */
export function renderRecipe(page: PageRecipe): string {
  const { recipe, family } = page;
  if (recipe === null) {
    return `<p class="recipe-summary">${escapeHtml(page.summary ?? "a recipe gyoza cannot read")}</p>`;
  }
  const outputStep = recipe.output.step ?? Object.keys(recipe.steps).at(-1);
  const finishing = [
    recipe.output.dtype,
    recipe.output.prune ? "pruned" : "not pruned",
    `metadata: ${recipe.output.metadata}`,
    recipe.output.clip_skip !== undefined ? `clip skip ${recipe.output.clip_skip}` : undefined,
  ].filter((part) => part !== undefined);
  const vae = recipe.output.vae;
  const vaeText =
    vae.policy === "bake"
      ? `bake ${vae.file ?? "(no file)"}`
      : vae.policy === "merge"
        ? `merge at the ${vae.slot ?? "BASE"} weight`
        : vae.policy === "keep-a"
          ? "keep A's"
          : "take B's";
  const tree =
    `<ul class="tree"><li><span class="node output">output</span> ${escapeHtml(recipe.output.path)} ` +
    `<span class="muted">(${escapeHtml(finishing.join(", "))})</span><ul>` +
    (outputStep !== undefined && outputStep in recipe.steps
      ? `<li>${stepNode(recipe, outputStep, 0)}</li>`
      : "") +
    `<li><span class="node vae">VAE</span> ${escapeHtml(vaeText)}</li></ul></li></ul>`;
  const charts = Object.entries(recipe.steps)
    .map(([name, step]) =>
      blockWeightChart(stepCurves(step, family), family, `${name}: ${step.method} block weights`),
    )
    .join("");
  return charts ? `${tree}<div class="charts">${charts}</div>` : tree;
}

function stepNode(recipe: Recipe, name: string, depth: number): string {
  const step = recipe.steps[name]!;
  const head = `<span class="node step">step</span> <b>${escapeHtml(name)}</b>: ${escapeHtml(step.method)} ${escapeHtml(describeWeights(step))}`;
  if (depth >= MAX_TREE_DEPTH) return `${head} <span class="muted">(…)</span>`;
  const children = Object.entries(step.inputs).map(([slot, ref]) => {
    const label = `<span class="muted">${escapeHtml(slot)}:</span> `;
    if (ref in recipe.steps && ref !== name) return `<li>${label}${stepNode(recipe, ref, depth + 1)}</li>`;
    const input = recipe.inputs[ref];
    const detail = input ? ` <span class="muted">${escapeHtml(input.path)}</span>` : "";
    return `<li>${label}<span class="node input">model</span> ${escapeHtml(ref)}${detail}</li>`;
  });
  for (const lora of step.loras ?? []) {
    children.push(
      `<li><span class="node lora">LoRA</span> ${escapeHtml(lora.input)} × ${escapeHtml(formatWeight(lora.ratio))}</li>`,
    );
  }
  return `${head}<ul>${children.join("")}</ul>`;
}

function describeWeights(step: RecipeStep): string {
  const parts: string[] = [];
  for (const [name, spec] of [
    ["alpha", step.alpha],
    ["beta", step.beta],
    ...Object.entries(step.params ?? {}),
  ] as const) {
    if (spec === undefined) continue;
    const text = weightSpecText(spec);
    parts.push(`${name} ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`);
  }
  return parts.length > 0 ? `(${parts.join(", ")})` : "";
}
