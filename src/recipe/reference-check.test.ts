import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { getLayout } from "../arch/layouts.js";
import { fusedMultiplyAddF32 } from "../kernels/fused-multiply-add.js";
import { builtinMethods } from "../merge/index.js";
import { FIXTURE_DIRS } from "../test-support/fixture-dirs.js";
import { loadRecipe } from "./load-recipe.js";
import { resolveStepWeights } from "./resolve-step-weights.js";

/**
 * The per-key alphas and the arithmetic together, over every key of a real SD 1.5 layout (EMA
 * copies included), against a reference written straight from DOMAIN.md (its own key → slot rule,
 * the reference preset table, `f32(f32(A·f32(1−α)) + f32(B·f32(α)))` and the torch.lerp formula) —
 * the check the held-out models run, at the library's level.
 */
const keys = getLayout("sd1-ldm", { withEma: true }).entries.map((entry) => entry.key);
const presets = JSON.parse(
  readFileSync(`${FIXTURE_DIRS.reference}presets/mbw-presets-sd1-26-base-first.json`, "utf8"),
) as Record<string, number[]>;

const recipe = loadRecipe(`gyoza: 1
inputs:
  anime: {path: a.safetensors}
  comp: {path: b.safetensors}
  tex: {path: c.safetensors}
steps:
  composition:
    method: weighted_sum
    inputs: {a: anime, b: comp}
    alpha: {preset: REVERSE_COSINE, base: 0.3}
    overrides: [{block: OUT04, pattern: attn2, value: 0.2}]
  final:
    method: weighted_sum
    inputs: {a: tex, b: composition}
    alpha: COSINE
    arithmetic: lerp
output: {path: out.safetensors}
`);

const SLOTS = [
  "BASE",
  ...Array.from({ length: 12 }, (_, i) => `IN${String(i).padStart(2, "0")}`),
  "M00",
].concat(Array.from({ length: 12 }, (_, i) => `OUT${String(i).padStart(2, "0")}`));

/** DOMAIN.md §3, classic rule, written independently of src/merge. */
function referenceSlot(key: string): string | null {
  if (!/\.(weight|bias)$/.test(key) || key.startsWith("model_ema.")) return null;
  if (!key.startsWith("model.diffusion_model.")) return "BASE";
  if (key.includes("time_embed")) return "IN00";
  if (key.includes(".out.")) return "OUT11";
  const match = /\.(input_blocks|middle_block|output_blocks)\.(\d+)\./.exec(key)!;
  const n = match[2]!.padStart(2, "0");
  return match[1] === "input_blocks" ? `IN${n}` : match[1] === "middle_block" ? "M00" : `OUT${n}`;
}

function referenceAlpha(preset: string, base: number, key: string): number | null {
  const slot = referenceSlot(key);
  if (slot === null) return null;
  if (slot === "BASE") return base;
  return presets[preset]![SLOTS.indexOf(slot)]!;
}

const f = Math.fround;
const fp32 = (a: number, b: number, alpha: number) => f(f(a * f(1 - alpha)) + f(b * f(alpha)));
/**
 * DOMAIN.md's lerp, `a + w(b − a)` for w < 0.5 else `b − (b − a)(1 − w)`, with each multiply-add
 * rounded once as torch's CPU kernel does (fmadd; checked against torch 1.13 in src/kernels).
 */
function lerp(a: number, b: number, alpha: number): number {
  const w = f(alpha);
  const d = f(b - a);
  return w < 0.5 ? fusedMultiplyAddF32(w, d, a) : fusedMultiplyAddF32(-f(1 - w), d, b);
}

function values(seed: number, key: string): Float32Array {
  let h = seed;
  for (const ch of key) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return Float32Array.from({ length: 8 }, (_, i) => Math.sin(h + i * 1.7) * 0.05);
}

describe("a two-step recipe over every SD 1.5 key", () => {
  it("matches the DOMAIN.md reference bit for bit (presets, BASE, an elemental override, fp32 then lerp)", () => {
    const composition = resolveStepWeights(recipe.steps.composition!, "sd1");
    const final = resolveStepWeights(recipe.steps.final!, "sd1");
    const weightedSum = builtinMethods.get("weighted_sum")!;
    let merged = 0;
    for (const key of keys) {
      const [a, b, c] = [values(1, key), values(2, key), values(3, key)];
      const first = composition(key);
      const expectedFirstAlpha = /output_blocks\.4\..*attn2/.test(key)
        ? 0.2
        : referenceAlpha("REVERSE_COSINE", 0.3, key);
      expect(first?.alpha ?? null, key).toBe(expectedFirstAlpha);
      const second = final(key);
      expect(second?.alpha ?? null, key).toBe(referenceAlpha("COSINE", 0, key));
      if (first === null || second === null) continue;
      const mid = new Float32Array(a.length);
      weightedSum.apply([a, b], first, mid, {
        key,
        arithmetic: "fp32",
        seed: 0,
        elementOffset: 0,
        shape: [8],
      });
      const out = new Float32Array(a.length);
      weightedSum.apply([c, mid], second, out, {
        key,
        arithmetic: "lerp",
        seed: 0,
        elementOffset: 0,
        shape: [8],
      });
      const expected = Float32Array.from(a, (ai, i) =>
        lerp(c[i]!, fp32(ai, b[i]!, expectedFirstAlpha!), second.alpha!),
      );
      expect(new Uint32Array(out.buffer), key).toEqual(new Uint32Array(expected.buffer));
      merged++;
    }
    // 197 CLIP + 248 VAE + 686 UNet keys, minus position_ids
    expect(merged).toBe(197 + 248 + 686 - 1);
  });
});
