import type { MergeMethod } from "./merge-method.js";

/** Stop once the summed distance improves by less than this fraction between iterations. */
const RELATIVE_TOLERANCE = 1e-12;

/**
 * The geometric median of three whole tensors (the point minimising the sum of Euclidean
 * distances), by Weiszfeld's iterations from the mean, in f64, rounded to f32 once at the end.
 * Robust to one outlier model, unlike the mean.
 */
export const geometricMedian: MergeMethod = {
  id: "geometric_median",
  summary: "geometric median of A, B and C (Weiszfeld iterations): an outlier-robust average",
  reference:
    "https://github.com/ljleb/sd-mecha/blob/main/sd_mecha/merge_methods/__init__.py (geometric_median)",
  inputs: [
    { name: "a", space: "weight" },
    { name: "b", space: "weight" },
    { name: "c", space: "weight" },
  ],
  output: "weight",
  params: [
    {
      name: "eps",
      default: 1e-6,
      min: 0,
      description: "smallest distance used as a divisor",
      perBlock: false,
    },
    { name: "iterations", default: 100, min: 1, description: "most Weiszfeld iterations", perBlock: false },
  ],
  granularity: "tensor",
  apply(inputs, params, out) {
    const n = out.length;
    const points = inputs as readonly Float32Array[];
    const median = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (const p of points) sum += p[i]!;
      median[i] = sum / points.length;
    }
    const eps = params.eps!;
    const iterations = Math.max(1, Math.floor(params.iterations!));
    let previous = totalDistance(points, median);
    const weights = new Float64Array(points.length);
    for (let step = 0; step < iterations; step++) {
      let weightSum = 0;
      points.forEach((p, j) => {
        weights[j] = 1 / Math.max(distance(p, median), eps);
        weightSum += weights[j]!;
      });
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let j = 0; j < points.length; j++) acc += weights[j]! * points[j]![i]!;
        median[i] = acc / weightSum;
      }
      const current = totalDistance(points, median);
      if (previous - current <= RELATIVE_TOLERANCE * previous) break;
      previous = current;
    }
    for (let i = 0; i < n; i++) out[i] = median[i]!;
  },
};

function distance(point: Float32Array, median: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < median.length; i++) {
    const d = point[i]! - median[i]!;
    sum += d * d;
  }
  return Math.sqrt(sum);
}

function totalDistance(points: readonly Float32Array[], median: Float64Array): number {
  let total = 0;
  for (const p of points) total += distance(p, median);
  return total;
}
