import {
  builtinMethods,
  builtinPresets,
  type Family,
  resolveWeights,
  type SlotWeights,
  unetSlotsOf,
  type WeightSpec,
} from "../merge/index.js";
import type { RecipeStep } from "../recipe/index.js";
import { escapeHtml, formatWeight } from "./html-text.js";

/** One per-block parameter of a step, resolved to a weight per slot (BASE, IN00.., M00, OUT..). */
export interface StepCurve {
  param: string;
  /** What the recipe wrote: a preset name, a number or the vector as text. */
  written: string;
  weights: SlotWeights | null;
  /** Why the weights could not be resolved (an unknown preset, a vector of the wrong length). */
  problem: string | null;
}

/** The per-block parameters (alpha, beta, ...) of a step; empty for methods without block weights. */
export function stepCurves(step: RecipeStep, family: Family): StepCurve[] {
  const method = builtinMethods.get(step.method);
  if (!method) return [];
  const curves: StepCurve[] = [];
  for (const param of method.params.filter((candidate) => candidate.perBlock)) {
    const spec = specOf(step, param.name);
    if (spec === undefined) continue;
    const written = weightSpecText(spec);
    try {
      curves.push({
        param: param.name,
        written,
        weights: resolveWeights(spec, family, { presets: builtinPresets }),
        problem: null,
      });
    } catch (error) {
      curves.push({ param: param.name, written, weights: null, problem: (error as Error).message });
    }
  }
  return curves;
}

/** A weight spec as a recipe writes it: `COSINE`, `0.5`, `0,0.1,...`, `{preset: COSINE, base: 0}` as text. */
export function weightSpecText(spec: WeightSpec): string {
  if (typeof spec === "number") return formatWeight(spec);
  if (typeof spec === "string") return spec;
  if (Array.isArray(spec)) return spec.map(formatWeight).join(",");
  const object = spec as Exclude<WeightSpec, number | string | readonly number[]>;
  const head =
    "preset" in object
      ? object.preset
      : "value" in object
        ? formatWeight(object.value)
        : "values" in object
          ? object.values.map(formatWeight).join(",")
          : `${object.curve} curve`;
  return object.base !== undefined ? `${head} (BASE ${formatWeight(object.base)})` : head;
}

function specOf(step: RecipeStep, name: string): WeightSpec | undefined {
  if (name === "alpha" && step.alpha !== undefined) return step.alpha;
  if (name === "beta" && step.beta !== undefined) return step.beta;
  return step.params?.[name];
}

const SLOT_WIDTH = 26;
const PLOT_HEIGHT = 160;
const LEFT = 40;
const TOP = 12;
const LABEL_HEIGHT = 44;
const COLOURS = ["#d0602a", "#2a7fd0", "#3a9a4a", "#9a3ad0"];

/**
 * An inline SVG of a step's block weights: one column per slot (slot names from the block layout
 * data on the x axis: 26 for SD 1.x/2.x with BASE, 20 for SDXL), bars for the first parameter and
 * a line with points for each, the value in each point's tooltip.
 */
export function blockWeightChart(curves: readonly StepCurve[], family: Family, title: string): string {
  const drawn = curves.filter((curve) => curve.weights !== null);
  if (drawn.length === 0) return "";
  // BASE and the UNet slots; an extra slot (sd-mecha's SDXL VAE) is the VAE policy, shown in the tree
  const slots = ["BASE", ...unetSlotsOf(family)];
  const values = drawn.flatMap((curve) => slots.map((slot) => curve.weights![slot]!));
  const low = Math.min(0, ...values);
  const high = Math.max(1, ...values);
  const y = (value: number): number => TOP + PLOT_HEIGHT - ((value - low) / (high - low)) * PLOT_HEIGHT;
  const x = (index: number): number => LEFT + index * SLOT_WIDTH + SLOT_WIDTH / 2;
  const width = LEFT + slots.length * SLOT_WIDTH + 8;
  const height = TOP + PLOT_HEIGHT + LABEL_HEIGHT;
  const parts: string[] = [];
  for (const tick of [low, (low + high) / 2, high]) {
    parts.push(
      `<line x1="${LEFT}" x2="${width - 8}" y1="${y(tick)}" y2="${y(tick)}" class="grid"/>`,
      `<text x="${LEFT - 4}" y="${y(tick) + 4}" text-anchor="end" class="tick">${formatWeight(tick)}</text>`,
    );
  }
  const first = drawn[0]!;
  slots.forEach((slot, index) => {
    const value = first.weights![slot]!;
    const top = Math.min(y(value), y(0));
    parts.push(
      `<rect x="${x(index) - SLOT_WIDTH / 2 + 3}" y="${top}" width="${SLOT_WIDTH - 6}" height="${Math.abs(y(value) - y(0))}" class="bar"/>`,
      `<text x="${x(index)}" y="${TOP + PLOT_HEIGHT + 8}" transform="rotate(60 ${x(index)} ${TOP + PLOT_HEIGHT + 8})" class="slot">${escapeHtml(slot)}</text>`,
    );
  });
  drawn.forEach((curve, curveIndex) => {
    const colour = COLOURS[curveIndex % COLOURS.length]!;
    const points = slots.map((slot, index) => `${x(index)},${y(curve.weights![slot]!)}`).join(" ");
    parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    slots.forEach((slot, index) => {
      const value = curve.weights![slot]!;
      parts.push(
        `<circle cx="${x(index)}" cy="${y(value)}" r="3" fill="${colour}"><title>${escapeHtml(`${curve.param} ${slot}: ${formatWeight(value)}`)}</title></circle>`,
      );
    });
  });
  const legend = drawn
    .map(
      (curve, index) =>
        `<span class="legend-item"><span class="swatch" style="background:${COLOURS[index % COLOURS.length]}"></span>${escapeHtml(curve.param)} = ${escapeHtml(curve.written)}</span>`,
    )
    .join(" ");
  return (
    `<figure class="chart"><svg role="img" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">` +
    `<title>${escapeHtml(title)}</title>${parts.join("")}</svg>` +
    `<figcaption>${escapeHtml(title)}: ${legend}</figcaption></figure>`
  );
}
