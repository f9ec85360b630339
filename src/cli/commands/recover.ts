import { basename } from "node:path";
import type { Command } from "commander";
import { type Recovery, recoverWeights, recoveryRecipe, withCheckpoints } from "../../analysis/index.js";
import { GyozaError } from "../../errors.js";
import type { Checkpoint } from "../../io/tensor.js";
import { loadKernel } from "../../kernels/index.js";
import type { KernelName } from "../../kernels/merge-kernel.js";
import type { BlockRule } from "../../merge/slots.js";
import { saveRecipe } from "../../recipe/index.js";
import type { OutputDtype } from "../../recipe/recipe-types.js";
import { mkdirOption, prepareOutputFolder } from "../flags.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";
import { writeRecipeFile } from "../write-recipe-file.js";

interface RecoverFlags {
  from: string[];
  json?: boolean;
  recipe?: string;
  elemental: boolean;
  blockRule?: BlockRule;
  kernel?: string;
  mkdir?: boolean;
}

const ALPHA_DECIMALS = 4;

export function registerRecover(program: Command): void {
  program
    .command("recover")
    .description(
      "estimate the block weights that made a merged model from its parents (weighted sum; add difference with three)",
    )
    .argument("[merged]", "the merged model (before --from)")
    .requiredOption(
      "--from <parents...>",
      "parents A B (weighted sum) or A B C (add difference A + α(B − C))",
    )
    .option("--json", "print α per slot (BASE, IN00 … OUT11), residuals, overrides and the recipe as JSON")
    .option(
      "--recipe <file>",
      "write the recipe that rebuilds the model to this file (paths relative to its folder)",
    )
    .addOption(mkdirOption())
    .option("--no-elemental", "do not look for keys inside a block that follow their own weight")
    .option("--block-rule <rule>", "key → block rule: classic (default) or sd-mecha")
    .option("--kernel <name>", "decoding kernel: native, wasm or js (default: fastest available)")
    .action(async (mergedArgument: string | undefined, flags: RecoverFlags) => {
      // --from takes every file after it, so a merged model written last lands among the parents.
      if (mergedArgument === undefined)
        throw new GyozaError("usage", "which model is the merged one?", {
          fix: "name it before --from: gyoza recover MERGED --from A B [C]",
        });
      const merged = mergedArgument;
      if (flags.from.length !== 2 && flags.from.length !== 3)
        throw new GyozaError(
          "usage",
          `--from takes two parents (A B) or three (A B C), got ${flags.from.length}`,
        );
      if (flags.recipe) await prepareOutputFolder(flags.recipe, flags.mkdir);
      const kernel = await loadKernel((flags.kernel as KernelName | undefined) ?? "auto");
      const { recovery, dtype } = await withCheckpoints(
        [merged, ...flags.from],
        async ([model, ...parents]) => ({
          recovery: await recoverWeights(model!, parents, {
            kernel,
            elemental: flags.elemental,
            ...(flags.blockRule ? { rule: flags.blockRule } : {}),
            onProgress: progressBar({ quiet: flags.json ?? false }),
          }),
          dtype: outputDtype(model!),
        }),
      );
      const rebuilt = recoveryRecipe(recovery, { parents: flags.from, merged, dtype });
      const recipe = saveRecipe(rebuilt);
      if (flags.recipe) await writeRecipeFile(rebuilt, flags.recipe, process.cwd());
      if (flags.json) {
        printJson({
          mode: recovery.mode,
          family: recovery.family,
          alpha: recovery.alpha,
          residual: Object.fromEntries(recovery.slots.map((slot) => [slot.slot, slot.residual])),
          overallResidual: recovery.residual,
          explained: recovery.explained,
          nearestPreset: recovery.nearestPreset,
          overrides: recovery.overrides,
          vae: recovery.vae,
          keys: {
            missing: recovery.keys.missing.length,
            extra: recovery.keys.extra.length,
            skipped: recovery.keys.skipped.length,
          },
          recipe,
        });
        return;
      }
      process.stdout.write(
        report(recovery, merged, flags.from, flags.recipe ? `recipe written to ${flags.recipe}` : recipe),
      );
    });
}

/** The dtype the rebuilt model should have: the merged model's UNet dtype. */
function outputDtype(model: Checkpoint): OutputDtype {
  const unet = [...model.tensors.values()].find((tensor) => tensor.key.startsWith("model.diffusion_model."));
  return unet?.dtype === "F16" ? "fp16" : unet?.dtype === "BF16" ? "bf16" : "fp32";
}

function report(recovery: Recovery, merged: string, parents: readonly string[], recipe: string): string {
  const formula = recovery.mode === "add_difference" ? "M = A + α (B − C)" : "M = (1 − α) A + α B";
  const lines = [
    `${basename(merged)} from ${parents.map((p) => basename(p)).join(", ")}: ${formula} (${recovery.family}, ${recovery.rule} blocks)`,
    `${"slot".padEnd(6)} ${"alpha".padStart(8)}  residual`,
  ];
  for (const slot of recovery.slots) {
    const alpha = slot.alpha === null ? "any" : slot.alpha.toFixed(ALPHA_DECIMALS);
    lines.push(`${slot.slot.padEnd(6)} ${alpha.padStart(8)}  ${slot.residual.toExponential(2)}`);
  }
  for (const override of recovery.overrides)
    lines.push(
      `override ${override.block} "${override.pattern}": ${override.value.toFixed(ALPHA_DECIMALS)} (${override.keys.length} keys)`,
    );
  if (recovery.vae)
    lines.push(
      `VAE: ${recovery.vae.policy} (α ${recovery.vae.alpha?.toFixed(ALPHA_DECIMALS) ?? "any"}, residual ${recovery.vae.residual.toExponential(2)})`,
    );
  if (recovery.nearestPreset) {
    const preset = recovery.nearestPreset;
    lines.push(
      `nearest preset: ${preset.name}${preset.swapped ? " with A and B exchanged" : ""} (RMS distance ${preset.distance.toFixed(ALPHA_DECIMALS)})`,
    );
  }
  lines.push(
    recovery.explained
      ? `explained: overall residual ${recovery.residual.toExponential(2)} (${recovery.solvedSlots} of ${recovery.slots.length} slots solved)`
      : recovery.solvedSlots === 0
        ? "NOT explained: no slot could be solved — the parents are identical wherever they were compared, so any weight fits"
        : `NOT explained: overall residual ${recovery.residual.toFixed(3)} — these parents (in this mode) did not make this model`,
  );
  if (recovery.keys.missing.length)
    lines.push(`${recovery.keys.missing.length} keys missing from a parent were left out`);
  lines.push("", recipe);
  return `${lines.join("\n")}\n`;
}
