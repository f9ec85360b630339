/**
 * The similarity numbers supermerger's cosineA / cosineB merges are built from. For a tensor of
 * shape [d0, ...rest] torch's `CosineSimilarity(dim=0)` gives one value per column (per index of
 * `rest`); supermerger averages it with the cosine of the two whole tensors. A 1-D tensor has a
 * single column. Computed in f64 (torch reduces in f32 in its own order, so the last bits differ).
 * https://github.com/hako-mikan/sd-webui-supermerger/blob/main/scripts/mergers/mergers.py
 */
export type CosineVariant = "cosine_a" | "cosine_b";

/** torch's eps for F.normalize (1e-12) and CosineSimilarity (1e-8). */
const NORMALIZE_EPSILON = 1e-12;
const COSINE_EPSILON = 1e-8;

export function columnCount(shape: readonly number[], length: number): number {
  return shape.length <= 1 ? 1 : length / shape[0]!;
}

/**
 * The combined similarity per column: (column cosine + whole-tensor cosine) / 2. cosine_a first
 * normalises each column to unit length (F.normalize(dim=0)), which changes the whole-tensor cosine.
 */
export function combinedSimilarity(
  variant: CosineVariant,
  a: Float32Array,
  b: Float32Array,
  shape: readonly number[],
): Float64Array {
  const columns = columnCount(shape, a.length);
  const rows = a.length / columns;
  const dot = new Float64Array(columns);
  const normA = new Float64Array(columns);
  const normB = new Float64Array(columns);
  for (let r = 0; r < rows; r++) {
    const base = r * columns;
    for (let j = 0; j < columns; j++) {
      const x = a[base + j]!;
      const y = b[base + j]!;
      dot[j]! += x * y;
      normA[j]! += x * x;
      normB[j]! += y * y;
    }
  }
  let totalDot = 0;
  let totalA = 0;
  let totalB = 0;
  const columnCosine = new Float64Array(columns);
  for (let j = 0; j < columns; j++) {
    const na = Math.sqrt(normA[j]!);
    const nb = Math.sqrt(normB[j]!);
    if (variant === "cosine_a") {
      // after F.normalize each column has norm 1 (or stays ~0 when it was all zeros)
      const sa = Math.max(na, NORMALIZE_EPSILON);
      const sb = Math.max(nb, NORMALIZE_EPSILON);
      const unitA = na / sa;
      const unitB = nb / sb;
      const unitDot = dot[j]! / (sa * sb);
      totalDot += unitDot;
      totalA += unitA * unitA;
      totalB += unitB * unitB;
      columnCosine[j] = unitDot / (Math.max(unitA, COSINE_EPSILON) * Math.max(unitB, COSINE_EPSILON));
    } else {
      totalDot += dot[j]!;
      totalA += normA[j]!;
      totalB += normB[j]!;
      columnCosine[j] = dot[j]! / (Math.max(na, COSINE_EPSILON) * Math.max(nb, COSINE_EPSILON));
    }
  }
  const wholeCosine = totalDot / (Math.sqrt(totalA) * Math.sqrt(totalB));
  for (let j = 0; j < columns; j++) columnCosine[j] = (columnCosine[j]! + wholeCosine) / 2;
  return columnCosine;
}

/**
 * The normalisation range supermerger computes over every merged key before merging: drop NaN,
 * drop values below the 1st and above the 99th percentile (numpy `method="midpoint"`), then take
 * min and max. The engine runs this pre-pass and passes the result as `sim_min` / `sim_max`.
 */
export function similarityRange(values: Iterable<Float64Array>): { min: number; max: number } {
  const all: number[] = [];
  for (const chunk of values) for (const v of chunk) if (!Number.isNaN(v)) all.push(v);
  if (all.length === 0) return { min: 0, max: 1 };
  all.sort((x, y) => x - y);
  const low = midpointPercentile(all, 1);
  const high = midpointPercentile(all, 99);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of all) {
    if (v < low || v > high) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  // two values whose percentiles fall between them trim everything: keep the untrimmed extremes
  return min <= max ? { min, max } : { min: all[0]!, max: all.at(-1)! };
}

function midpointPercentile(sorted: readonly number[], percent: number): number {
  const position = ((sorted.length - 1) * percent) / 100;
  return (sorted[Math.floor(position)]! + sorted[Math.ceil(position)]!) / 2;
}
