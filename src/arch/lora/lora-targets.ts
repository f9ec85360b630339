import { GyozaError } from "../../errors.js";
import type { Checkpoint, StoredTensor } from "../../io/tensor.js";
import { analyseLora, type ReadModule } from "./analyse-lora.js";
import { type LoraBaseId, loraBase, moduleTarget, targetDeltaShape } from "./lora-key-map.js";
import { deltaFits, type LoraIssue } from "./lora-shapes.js";

/** One weight change a LoRA makes to a checkpoint: W[rows] += ratio · scale · up @ down. */
export interface LoraTarget {
  /** kohya module name (PEFT names converted). */
  module: string;
  /** The ldm/sgm checkpoint key it changes. */
  targetKey: string;
  /** Only these rows of the target change (OpenCLIP's packed q/k/v): rows [part·n/of, (part+1)·n/of). */
  rows?: { part: number; of: number };
  /** [out, rank] or [out, rank, 1, 1]. */
  up: StoredTensor;
  /** [rank, in] or [rank, in, kh, kw]. */
  down: StoredTensor;
  /** LyCORIS Tucker core [rank, rank, kh, kw]: delta = up ×₁ mid ×₂ down instead of up @ down. */
  mid?: StoredTensor;
  /** The alpha used: the file's, or the rank when it has none (then `alphaMissing`). */
  alpha: number;
  alphaMissing: boolean;
  rank: number;
  /** alpha / rank: what up @ down is multiplied by (before the user's ratio). */
  scale: number;
  /** [out, in] for a linear layer, [out, in, kh, kw] for a convolution (up @ down, reshaped). */
  shapeOfDelta: number[];
  /** The shape of the changed weight (of its rows, when `rows` is set). */
  targetShape: number[];
}

export interface LoraTargetOptions {
  /** The base of the model the LoRA goes into: a LoRA for another base is refused. */
  base?: LoraBaseId;
  /** The model's tensors: each target must be there with a fitting shape (default: the base's reference layout). */
  model?: ReadonlyMap<string, { readonly shape: readonly number[] }>;
}

/** How many problems a refusal lists. */
const PROBLEMS_SHOWN = 5;

/**
 * Every weight change a kohya/LoCon/PEFT LoRA makes, mapped to the ldm/sgm key it changes, from
 * headers and alpha scalars only: what a baking step streams through. Refuses, before anything is
 * written, a LoRA for another base model (architecture-mismatch), modules whose parts do not fit
 * together or whose delta does not fit the target (format / architecture-mismatch, each naming the
 * module), and LoHa/LoKr/DoRA modules (recognised, not bakeable yet). A missing alpha is no error: it is
 * taken as the rank (`alphaMissing`), as kohya does.
 */
export async function loraTargets(
  checkpoint: Checkpoint,
  options: LoraTargetOptions = {},
): Promise<LoraTarget[]> {
  const file = checkpoint.path;
  const analysis = await analyseLora(checkpoint);
  if (!analysis) throw new GyozaError("format", "no LoRA modules in this file", { file });
  const detected = analysis.base;
  if (options.base && detected.id !== "unknown" && detected.id !== options.base) {
    const wanted = loraBase(options.base);
    throw new GyozaError(
      "architecture-mismatch",
      `a LoRA for ${detected.name} cannot change a ${wanted.name} model (${detected.evidence[0] ?? "its evidence"})`,
      { file, fix: `use a LoRA trained for ${wanted.name}, or a ${detected.name} model` },
    );
  }
  const baseId = options.base ?? (detected.id === "unknown" ? undefined : detected.id);
  if (!baseId) {
    throw new GyozaError("architecture-mismatch", "cannot tell which base model this LoRA was trained for", {
      file,
      fix: "name the model's base (sd1, sd2 or sdxl) when baking it",
    });
  }
  const base = loraBase(baseId);
  const errors = analysis.issues.filter((issue) => issue.severity === "error");
  const targets: LoraTarget[] = [];
  for (const module of analysis.modules) {
    const target = bakeTarget(module, base.id, options.model, errors);
    if (target) targets.push(target);
  }
  if (errors.length > 0) throw refusal(errors, file);
  return targets;
}

function bakeTarget(
  module: ReadModule,
  baseId: LoraBaseId,
  model: LoraTargetOptions["model"],
  errors: LoraIssue[],
): LoraTarget | undefined {
  const fail = (code: LoraIssue["code"], message: string) => {
    errors.push({ severity: "error", code, module: module.name, message: `${module.name}: ${message}` });
    return undefined;
  };
  if (module.algorithm !== "lora") {
    return fail(
      "unsupported",
      `a ${module.algorithm} module: recognised, but only LoRA/LoCon modules can be baked`,
    );
  }
  if (module.tensors.has("dora_scale")) {
    return fail(
      "unsupported",
      "a DoRA module (dora_scale): applying it needs the weight's norm, not supported yet",
    );
  }
  if (module.rank === null || module.deltaShape === null || module.alpha === null) return undefined; // already an error
  const base = loraBase(baseId);
  const target = moduleTarget(module.name, base);
  if (!target) return fail("no-target", `names no key of the ${base.name} layout`);
  const shape = model ? model.get(target.key)?.shape : target.shape;
  if (!shape) return fail("no-target", `changes ${target.key}, which the model does not have`);
  const targetShape = targetDeltaShape(target, shape);
  if (!deltaFits(module.deltaShape, targetShape)) {
    return fail(
      "target-shape",
      `its delta [${module.deltaShape}] does not fit ${target.key} [${targetShape}]${target.rows ? ` (rows part ${target.rows.part} of ${target.rows.of})` : ""}`,
    );
  }
  const mid = module.tensors.get("mid");
  return {
    module: module.name,
    targetKey: target.key,
    ...(target.rows ? { rows: target.rows } : {}),
    up: module.tensors.get("up")!,
    down: module.tensors.get("down")!,
    ...(mid ? { mid } : {}),
    alpha: module.alpha,
    alphaMissing: module.alphaTakenAsRank !== undefined,
    rank: module.rank,
    scale: module.alpha / module.rank,
    shapeOfDelta: module.deltaShape,
    targetShape,
  };
}

/** One error for all the problems: architecture-mismatch when any module does not fit the model. */
function refusal(errors: readonly LoraIssue[], file: string): GyozaError {
  const mismatch = errors.some((e) => e.code === "no-target" || e.code === "target-shape");
  const shown = errors.slice(0, PROBLEMS_SHOWN).map((e) => e.message);
  const more = errors.length > PROBLEMS_SHOWN ? `; … (${errors.length - PROBLEMS_SHOWN} more)` : "";
  return new GyozaError(
    mismatch ? "architecture-mismatch" : "format",
    `${errors.length} LoRA module${errors.length === 1 ? "" : "s"} cannot be applied: ${shown.join("; ")}${more}`,
    {
      file,
      fix: mismatch
        ? "check that the LoRA was trained for this model's architecture (gyoza inspect shows its base model)"
        : "the LoRA file is damaged or of a kind gyoza cannot apply: re-export it from its trainer",
    },
  );
}
