import type { DType } from "../io/dtype.js";
import data from "./architectures.json" with { type: "json" };
import { getLayout } from "./layouts.js";

export type ArchitectureFamily = "sd1" | "sd2" | "sdxl" | "vae" | "embedding" | "lora";

interface Marker {
  key?: string;
  keyPattern?: string;
  /** null = any shape; a null dimension = any size. */
  shape: (number | null)[] | null;
  says: string;
}

export interface ComponentRule {
  name: string;
  prefix: string;
}

export interface ArchitectureSpec {
  id: string;
  name: string;
  family: ArchitectureFamily;
  /** modelspec.architecture value. */
  modelspec: string;
  resolution: string;
  /** The reference layout (src/arch/layouts) whose coverage adds to the score. */
  layout: string | null;
  /** The key naming scheme of that layout: ldm, sgm, or kohya (diffusers names in one file). */
  keyLayout?: string;
  /** What to do with a file of this kind (e.g. convert a kohya-layout file before merging). */
  suggestion?: string;
  required: Marker[];
  evidence: Marker[];
  components: ComponentRule[];
}

/** The built-in architectures (data: src/arch/architectures.json). Pass your own list to detect others. */
export const BUILTIN_ARCHITECTURES: readonly ArchitectureSpec[] = data.architectures as ArchitectureSpec[];

export interface TensorShapeInfo {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface Detection {
  id: string;
  name: string;
  family: ArchitectureFamily | "unknown";
  /** Key naming scheme: "ldm" (SD 1.x/2.x, VAE), "sgm" (SDXL), "kohya" (diffusers names: convert first). */
  keyLayout: string | null;
  modelspec: string | null;
  resolution: string | null;
  /** 0..1: share of the evidence that matched. */
  score: number;
  /** Human-readable reasons, one per matched marker. */
  evidence: string[];
  /** Other architectures whose required markers also matched, best first. */
  alternatives: { id: string; score: number }[];
  ambiguous: boolean;
  /** For unknown or ambiguous files, or ones to convert before merging: what to do. */
  suggestion?: string;
  spec?: ArchitectureSpec;
}

/** Two candidates closer than this are reported as ambiguous. */
const AMBIGUITY_MARGIN = 0.05;

function shapeMatches(expected: (number | null)[] | null, actual: readonly number[]): boolean {
  if (expected === null) return true;
  return expected.length === actual.length && expected.every((d, i) => d === null || d === actual[i]);
}

function findMarker(marker: Marker, tensors: ReadonlyMap<string, TensorShapeInfo>): string | undefined {
  if (marker.key !== undefined) {
    const tensor = tensors.get(marker.key);
    return tensor && shapeMatches(marker.shape, tensor.shape) ? marker.key : undefined;
  }
  const pattern = new RegExp(marker.keyPattern ?? "^$");
  for (const [key, tensor] of tensors)
    if (pattern.test(key) && shapeMatches(marker.shape, tensor.shape)) return key;
  return undefined;
}

function describe(marker: Marker, key: string, tensors: ReadonlyMap<string, TensorShapeInfo>): string {
  return `${key} ${JSON.stringify(tensors.get(key)?.shape)}: ${marker.says}`;
}

/**
 * Recognises an architecture from marker keys and shapes (never from file names), scoring each
 * candidate by the evidence it explains and by how much of its reference layout is present.
 */
export function detectArchitecture(
  tensors: ReadonlyMap<string, TensorShapeInfo>,
  architectures: readonly ArchitectureSpec[] = BUILTIN_ARCHITECTURES,
): Detection {
  const candidates: { spec: ArchitectureSpec; score: number; evidence: string[] }[] = [];
  for (const spec of architectures) {
    const evidence: string[] = [];
    let complete = true;
    for (const marker of spec.required) {
      const key = findMarker(marker, tensors);
      if (!key) {
        complete = false;
        break;
      }
      evidence.push(describe(marker, key, tensors));
    }
    if (!complete) continue;
    let matched = 0;
    for (const marker of spec.evidence) {
      const key = findMarker(marker, tensors);
      if (key) {
        matched++;
        evidence.push(describe(marker, key, tensors));
      }
    }
    let score = spec.evidence.length === 0 ? 1 : 0.5 + (0.5 * matched) / spec.evidence.length;
    if (spec.layout) {
      const coverage = layoutCoverage(spec.layout, tensors);
      evidence.push(`${coverage.present} of ${coverage.expected} reference ${spec.layout} keys present`);
      score = 0.5 * score + 0.5 * (coverage.present / Math.max(1, coverage.expected));
    }
    candidates.push({ spec, score, evidence });
  }
  candidates.sort((a, b) => b.score - a.score);
  const best = candidates[0];
  if (!best) {
    const byName = detectByKeyNames(tensors, architectures);
    if (byName) return byName;
    return {
      id: "unknown",
      name: "unknown",
      family: "unknown",
      keyLayout: null,
      modelspec: null,
      resolution: null,
      score: 0,
      evidence: [],
      alternatives: [],
      ambiguous: false,
      suggestion: unknownSuggestion(tensors),
    };
  }
  const alternatives = candidates.slice(1).map((c) => ({ id: c.spec.id, score: round(c.score) }));
  const ambiguous = candidates.length > 1 && best.score - candidates[1]!.score < AMBIGUITY_MARGIN;
  return {
    id: best.spec.id,
    name: best.spec.name,
    family: best.spec.family,
    keyLayout: best.spec.keyLayout ?? null,
    modelspec: best.spec.modelspec,
    resolution: best.spec.resolution,
    score: round(best.score),
    evidence: best.evidence,
    alternatives,
    ambiguous,
    ...(ambiguous
      ? { suggestion: `also matches ${candidates[1]!.spec.id}: check the file's origin` }
      : best.spec.suggestion
        ? { suggestion: best.spec.suggestion }
        : {}),
    spec: best.spec,
  };
}

function layoutCoverage(
  layoutId: string,
  tensors: ReadonlyMap<string, TensorShapeInfo>,
): { present: number; expected: number } {
  const layout = getLayout(layoutId);
  let present = 0;
  let expected = 0;
  for (const entry of layout.entries) {
    if (entry.optional) continue;
    expected++;
    // Presence by name (or alias): fine-tunes never change shapes, and tiny test models scale them down.
    if (tensors.has(entry.key) || entry.aliases.some((alias) => tensors.has(alias))) present++;
  }
  return { present, expected };
}

/** Share of a file's keys that must be a layout's key names for a name-only identification. */
const NAME_MATCH_MIN_SHARE = 0.8;
const NAME_MATCH_MIN_KEYS = 3;

/**
 * When no marker shape matches, the key names can still say what a file is: a scaled-down test
 * model or a truncated export with SD 1.x names is reported as such, with a low score and a note,
 * rather than as unknown.
 */
function detectByKeyNames(
  tensors: ReadonlyMap<string, TensorShapeInfo>,
  architectures: readonly ArchitectureSpec[],
): Detection | undefined {
  const keys = [...tensors.keys()].filter((key) => !key.startsWith("model_ema."));
  const scored: { spec: ArchitectureSpec; matched: number }[] = [];
  const seenLayouts = new Set<string>();
  for (const spec of architectures) {
    if (!spec.layout || seenLayouts.has(spec.layout)) continue;
    seenLayouts.add(spec.layout);
    const layout = getLayout(spec.layout);
    scored.push({ spec, matched: keys.filter((key) => layout.byKey.has(key)).length });
  }
  scored.sort((a, b) => b.matched - a.matched);
  const top = scored[0];
  if (!top || top.matched < NAME_MATCH_MIN_KEYS || top.matched / keys.length < NAME_MATCH_MIN_SHARE)
    return undefined;
  const inputChannels = tensors.get("model.diffusion_model.input_blocks.0.0.weight")?.shape[1];
  const spec =
    (inputChannels === 9 &&
      architectures.find((s) => s.layout === top.spec.layout && s.id.endsWith("inpaint"))) ||
    top.spec;
  const ambiguous = scored[1] !== undefined && scored[1].matched === top.matched;
  return {
    id: spec.id,
    name: spec.name,
    family: spec.family,
    keyLayout: spec.keyLayout ?? null,
    modelspec: spec.modelspec,
    resolution: spec.resolution,
    score: round((0.4 * top.matched) / keys.length),
    evidence: [
      `${top.matched} of ${keys.length} keys are ${spec.layout} key names, but no marker shape matches`,
    ],
    alternatives: scored
      .slice(1)
      .filter((s) => s.matched > 0)
      .map((s) => ({ id: s.spec.id, score: round((0.4 * s.matched) / keys.length) })),
    ambiguous,
    suggestion:
      "the key names fit but the shapes do not (a scaled-down test model?): do not merge it with full-size models",
    spec,
  };
}

function unknownSuggestion(tensors: ReadonlyMap<string, TensorShapeInfo>): string {
  const keys = [...tensors.keys()];
  if (keys.length === 0) return "the file holds no tensors";
  if (keys.some((k) => k.startsWith("model.diffusion_model.")))
    return "it has a UNet but no known cross-attention shape: an unsupported variant (SD3/Flux/cascade?)";
  if (keys.some((k) => k.includes("down_blocks") || k.includes("up_blocks")))
    return "diffusers-layout keys: convert it to a single-file (LDM/SGM) checkpoint first";
  if (keys.some((k) => k.startsWith("module.")))
    return "keys start with 'module.' (a DataParallel save): strip the prefix";
  return `no known marker keys; first keys: ${keys.slice(0, 3).join(", ")}`;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
