import type { Checkpoint } from "../../io/tensor.js";
import { analyseLora, type ReadModule } from "./analyse-lora.js";
import type { LoraBaseDetection } from "./lora-base.js";
import { loraBase, moduleTarget, targetDeltaShape } from "./lora-key-map.js";
import type { LoraAlgorithm, LoraGroup, LoraNaming } from "./lora-modules.js";
import { deltaFits, type LoraIssue } from "./lora-shapes.js";
import { summarizeTraining, type TrainingSummary } from "./training-metadata.js";

/** The file format, as users call it: kohya LoRA, LyCORIS LoCon / LoHa / LoKr, diffusers PEFT. */
export type LoraFormat = "kohya" | "lycoris-locon" | "loha" | "lokr" | "peft" | "lycoris-other";

/** One module as `inspect --json` shows it. */
export interface LoraModuleReport {
  module: string;
  algorithm: LoraAlgorithm;
  group: LoraGroup;
  rank: number | null;
  alpha: number | null;
  deltaShape: number[] | null;
  /** The checkpoint key it changes, for the detected base model. */
  targetKey?: string;
  rows?: { part: number; of: number };
}

/** What `gyoza inspect` says about a LoRA (`lora` in the gyoza.inspect/1 JSON). */
export interface LoraReport {
  format: LoraFormat;
  /** kohya names (lora_unet_…) or diffusers PEFT names (unet.….lora_A.weight). */
  naming: LoraNaming;
  /** Whether UNet modules are named after the diffusers UNet (down_blocks) or the ldm/sgm one (input_blocks). */
  unetNames: "diffusers" | "ldm" | "mixed" | null;
  algorithms: Partial<Record<LoraAlgorithm, number>>;
  base: LoraBaseDetection;
  modules: { total: number; unet: number; textEncoder: number; textEncoder2: number; convolutions: number };
  /** Ranks: the value most modules have, and module count per value. */
  rank: { common: number | null; values: Record<string, number> };
  /** Alphas (a missing or 0 alpha counts as the rank, kohya's convention), as for rank. */
  alpha: { common: number | null; values: Record<string, number>; missing: number };
  /** alpha / rank when it is the same for every module. */
  scale: number | null;
  /** Where the modules land in the base model: per UNet block (IN01, M00, OUT05 …) and text encoder. */
  targets: {
    mapped: number;
    unmapped: number;
    blocks: Record<string, number>;
    textEncoder: number;
    textEncoder2: number;
  };
  perModule: LoraModuleReport[];
  training?: TrainingSummary;
  issues: LoraIssue[];
}

/** How many module names an aggregated issue lists. */
const NAMES_SHOWN = 5;

/** The LoRA report of a checkpoint, or undefined when it holds no LoRA/LyCORIS/PEFT modules. */
export async function inspectLora(checkpoint: Checkpoint): Promise<LoraReport | undefined> {
  const analysis = await analyseLora(checkpoint);
  if (!analysis) return undefined;
  const { modules, base } = analysis;
  const issues = [...analysis.issues];
  const spec = base.id === "unknown" ? undefined : loraBase(base.id);
  const perModule: LoraModuleReport[] = [];
  const blocks: Record<string, number> = {};
  const unmapped: string[] = [];
  const misfits: string[] = [];
  let textEncoder = 0;
  let textEncoder2 = 0;
  for (const module of modules) {
    const target = spec ? moduleTarget(module.name, spec) : undefined;
    perModule.push({
      module: module.name,
      algorithm: module.algorithm,
      group: module.group,
      rank: module.rank,
      alpha: module.alpha,
      deltaShape: module.deltaShape,
      ...(target ? { targetKey: target.key } : {}),
      ...(target?.rows ? { rows: target.rows } : {}),
    });
    if (!target) {
      unmapped.push(module.name);
      continue;
    }
    const rows = targetDeltaShape(target);
    if (module.deltaShape && !deltaFits(module.deltaShape, rows))
      misfits.push(`${module.name} [${module.deltaShape}] → ${target.key} [${rows}]`);
    if (module.group === "text_encoder") textEncoder++;
    else if (module.group === "text_encoder_2") textEncoder2++;
    else {
      const block = blockOf(target.key);
      blocks[block] = (blocks[block] ?? 0) + 1;
    }
  }
  if (spec && unmapped.length > 0) {
    issues.push({
      severity: "warning",
      code: "no-target",
      module: unmapped[0]!,
      message: `${unmapped.length} modules name no key of the ${spec.name} layout: ${listed(unmapped)}`,
    });
  }
  if (misfits.length > 0) {
    issues.push({
      severity: "error",
      code: "target-shape",
      message: `${misfits.length} modules do not fit the ${spec!.name} weight they change: ${listed(misfits)}`,
    });
  }
  issues.push(...alphaIssues(modules));
  const alphaMissing = modules.filter((m) => m.alphaTakenAsRank === "missing").length;
  const alpha = histogram(modules.map((m) => m.alpha));
  const rank = histogram(modules.map((m) => m.rank));
  const scales = new Set(modules.map((m) => (m.alpha !== null && m.rank ? m.alpha / m.rank : null)));
  const training = summarizeTraining(analysis.metadata);
  return {
    format: formatOf(analysis.naming, modules, training),
    naming: analysis.naming,
    unetNames: unetNamesOf(modules),
    algorithms: countBy(modules.map((m) => m.algorithm)),
    base,
    modules: {
      total: modules.length,
      unet: modules.filter((m) => m.group === "unet").length,
      textEncoder: modules.filter((m) => m.group === "text_encoder").length,
      textEncoder2: modules.filter((m) => m.group === "text_encoder_2").length,
      convolutions: modules.filter((m) => (m.deltaShape?.length ?? 0) === 4).length,
    },
    rank,
    alpha: { ...alpha, missing: alphaMissing },
    scale: scales.size === 1 ? [...scales][0]! : null,
    targets: {
      mapped: modules.length - unmapped.length,
      unmapped: unmapped.length,
      blocks,
      textEncoder,
      textEncoder2,
    },
    perModule,
    ...(training ? { training } : {}),
    issues,
  };
}

/** "alpha missing: taken as rank" (kohya's convention), once for all the modules it concerns. */
function alphaIssues(modules: readonly ReadModule[]): LoraIssue[] {
  const issues: LoraIssue[] = [];
  for (const reason of ["missing", "zero"] as const) {
    const names = modules.filter((m) => m.alphaTakenAsRank === reason).map((m) => m.name);
    if (names.length === 0) continue;
    const what = reason === "missing" ? "alpha missing" : "alpha is 0";
    const scope = names.length === modules.length ? `all ${names.length} modules` : `${names.length} modules`;
    issues.push({
      severity: "warning",
      code: "alpha-missing",
      module: names[0]!,
      message: `${what}: taken as rank (scale 1, kohya's convention) for ${scope}: ${listed(names)}`,
    });
  }
  return issues;
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, NAMES_SHOWN).join(", ");
  return names.length > NAMES_SHOWN ? `${shown}, … (${names.length - NAMES_SHOWN} more)` : shown;
}

/** The UNet block of an ldm/sgm key, named like block-weight slots (IN00…, M00, OUT00…). */
export function blockOf(key: string): string {
  const match = /^model\.diffusion_model\.(input_blocks|middle_block|output_blocks)\.(\d+)\./.exec(key);
  if (!match) return "unet-other";
  if (match[1] === "middle_block") return "M00";
  return `${match[1] === "input_blocks" ? "IN" : "OUT"}${match[2]!.padStart(2, "0")}`;
}

function formatOf(
  naming: LoraNaming,
  modules: readonly ReadModule[],
  training: TrainingSummary | undefined,
): LoraFormat {
  if (naming === "peft") return "peft";
  const counts = countBy(modules.map((m) => m.algorithm));
  if ((counts.loha ?? 0) > 0 && (counts.loha ?? 0) >= (counts.lokr ?? 0)) return "loha";
  if ((counts.lokr ?? 0) > 0) return "lokr";
  if ((counts.lora ?? 0) === 0) return "lycoris-other";
  // LoCon: LyCORIS's LoRA for convolutions too, same tensor names as kohya's; told by the trainer
  // module it records, or by a Tucker core (lora_mid) kohya never writes.
  const lycoris =
    training?.networkModule?.startsWith("lycoris") || training?.networkModule?.startsWith("locon");
  if (lycoris || modules.some((m) => m.tensors.has("mid"))) return "lycoris-locon";
  return "kohya";
}

function unetNamesOf(modules: readonly ReadModule[]): LoraReport["unetNames"] {
  const unet = modules.filter((m) => m.group === "unet").map((m) => m.name);
  const diffusers = unet.some((name) => /^lora_unet_(down_blocks|mid_block|up_blocks)_/.test(name));
  const ldm = unet.some((name) => /^lora_unet_(input_blocks|middle_block|output_blocks)_/.test(name));
  return diffusers && ldm ? "mixed" : diffusers ? "diffusers" : ldm ? "ldm" : null;
}

function countBy<T extends string>(values: readonly T[]): Partial<Record<T, number>> {
  const counts: Partial<Record<T, number>> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function histogram(values: readonly (number | null)[]): {
  common: number | null;
  values: Record<string, number>;
} {
  const counts = new Map<number, number>();
  for (const value of values) if (value !== null) counts.set(value, (counts.get(value) ?? 0) + 1);
  let common: number | null = null;
  for (const [value, count] of counts) if (common === null || count > counts.get(common)!) common = value;
  return { common, values: Object.fromEntries([...counts].map(([value, count]) => [String(value), count])) };
}
