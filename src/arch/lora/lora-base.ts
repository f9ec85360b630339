import { LORA_BASES, type LoraBaseId, moduleTarget } from "./lora-key-map.js";
import data from "./lora-key-maps.json" with { type: "json" };
import type { LoraModule } from "./lora-modules.js";
import type { LoraIssue, ModuleShape } from "./lora-shapes.js";

interface ShapeEvidence {
  module: string;
  inputWidth?: number;
  deltaDims?: number;
  base: LoraBaseId;
  says: string;
}

interface MetadataEvidence {
  key: string;
  pattern: string;
  base: LoraBaseId;
}

const SHAPE_EVIDENCE = data.evidence as ShapeEvidence[];
const METADATA_EVIDENCE = data.metadataEvidence as MetadataEvidence[];

/** Which base model a LoRA was trained for, and why gyoza thinks so. */
export interface LoraBaseDetection {
  id: LoraBaseId | "unknown";
  name: string;
  /** One line per matched piece of evidence (module names and shapes first, then metadata). */
  evidence: string[];
  /** How it was decided: module shapes, the training metadata alone, or which layout the names fit. */
  decidedBy: "shapes" | "metadata" | "names" | "none";
}

export interface AnalysedModule extends LoraModule, ModuleShape {}

/**
 * The base model of a LoRA, by evidence (lora-key-maps.json): module names and delta shapes (the
 * cross-attention context dim 768 / 1024 / 2048, two text encoders, a convolutional proj_in) count
 * first; training metadata (ss_base_model_version, modelspec.architecture) decides only when the
 * shapes say nothing, and a disagreement is reported. With neither, the base whose layout names the
 * most modules wins.
 */
export function detectLoraBase(
  modules: readonly AnalysedModule[],
  metadata: Readonly<Record<string, string>>,
): { base: LoraBaseDetection; issues: LoraIssue[] } {
  const issues: LoraIssue[] = [];
  const byShape = new Map<LoraBaseId, string[]>();
  for (const rule of SHAPE_EVIDENCE) {
    const pattern = new RegExp(rule.module);
    const hit = modules.find(
      (module) =>
        pattern.test(module.name) &&
        (rule.inputWidth === undefined || module.deltaShape?.[1] === rule.inputWidth) &&
        (rule.deltaDims === undefined || module.deltaShape?.length === rule.deltaDims),
    );
    if (!hit) continue;
    const shape = hit.deltaShape ? ` [${hit.deltaShape.join(", ")}]` : "";
    const lines = byShape.get(rule.base) ?? [];
    lines.push(`${hit.name}${shape}: ${rule.says}`);
    byShape.set(rule.base, lines);
  }
  const byMetadata = new Map<LoraBaseId, string[]>();
  for (const rule of METADATA_EVIDENCE) {
    const value = metadata[rule.key];
    if (value === undefined || !new RegExp(rule.pattern).test(value)) continue;
    const lines = byMetadata.get(rule.base) ?? [];
    lines.push(`metadata ${rule.key} = ${value}`);
    byMetadata.set(rule.base, lines);
  }
  const ranked = (map: Map<LoraBaseId, string[]>) => [...map].sort((a, b) => b[1].length - a[1].length);
  const shapes = ranked(byShape);
  const fromMetadata = ranked(byMetadata);
  if (shapes.length > 1) {
    issues.push({
      severity: "warning",
      code: "base-conflict",
      message: `module shapes point at more than one base model: ${shapes.map(([id, lines]) => `${id} (${lines[0]})`).join("; ")}`,
    });
  }
  const chosen = shapes[0] ?? fromMetadata[0];
  if (chosen) {
    const [id] = chosen;
    const decidedBy = shapes[0] ? "shapes" : "metadata";
    const contradicting = fromMetadata.filter(([other]) => other !== id);
    if (decidedBy === "shapes" && contradicting.length > 0) {
      issues.push({
        severity: "warning",
        code: "base-conflict",
        message: `the training metadata says ${contradicting.map(([other, lines]) => `${other} (${lines[0]})`).join(", ")}, but the module shapes say ${id}: the shapes are trusted`,
      });
    }
    const evidence = [...(byShape.get(id) ?? []), ...(byMetadata.get(id) ?? [])];
    return { base: { id, name: nameOf(id), evidence, decidedBy }, issues };
  }
  return { base: byNames(modules), issues };
}

/**
 * Without evidence: the base whose reference layout names the most modules (at least half of them),
 * if only one does (SD 1.x and 2.x share their UNet names, so a tie says nothing).
 */
function byNames(modules: readonly AnalysedModule[]): LoraBaseDetection {
  const counts = LORA_BASES.map((base) => ({
    id: base.id,
    count: modules.filter((module) => moduleTarget(module.name, base)).length,
  })).sort((a, b) => b.count - a.count);
  const best = counts[0]!;
  if (best.count * 2 < modules.length || best.count === 0 || counts[1]?.count === best.count)
    return { id: "unknown", name: "unknown", evidence: [], decidedBy: "none" };
  return {
    id: best.id,
    name: nameOf(best.id),
    evidence: [`${best.count} of ${modules.length} module names are keys of the ${nameOf(best.id)} layout`],
    decidedBy: "names",
  };
}

function nameOf(id: LoraBaseId): string {
  return LORA_BASES.find((base) => base.id === id)!.name;
}
