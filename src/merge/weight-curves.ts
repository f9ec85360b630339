/**
 * Curve formulas for block weights, evaluated over the UNet slots (t = i / (n − 1)):
 * value = min + (max − min)·shape(t). With min 0 and max 1, `cosine` is exactly DOMAIN.md's
 * `COSINE[i] = (1 + cos(πi/24))/2` for SD1, and `smoothstep` the SMOOTHSTEP preset (3t² − 2t³).
 */
export const CURVE_SHAPES = {
  cosine: (t: number) => (1 + Math.cos(Math.PI * t)) / 2,
  reverse_cosine: (t: number) => (1 - Math.cos(Math.PI * t)) / 2,
  smoothstep: (t: number) => 3 * t * t - 2 * t * t * t,
  reverse_smoothstep: (t: number) => 1 - (3 * t * t - 2 * t * t * t),
  linear: (t: number) => t,
  reverse_linear: (t: number) => 1 - t,
} as const satisfies Record<string, (t: number) => number>;

export type CurveName = keyof typeof CURVE_SHAPES;

export const CURVE_NAMES = Object.keys(CURVE_SHAPES) as CurveName[];

export function curveValues(curve: CurveName, count: number, min = 0, max = 1): number[] {
  const shape = CURVE_SHAPES[curve];
  return Array.from({ length: count }, (_, i) => {
    const value = shape(count === 1 ? 0 : i / (count - 1));
    return min === 0 && max === 1 ? value : min + (max - min) * value;
  });
}
