import type { Command } from "commander";
import { convertCheckpoint } from "../../engine/convert-checkpoint.js";
import type { RelayoutReport } from "../../engine/relayout-tensors.js";
import { parsePrecision } from "../../io/dtype.js";
import type { OutputDtype } from "../../recipe/index.js";
import { dtypeOption, mkdirOption, prepareOutputFolder } from "../flags.js";
import { formatBytes, printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface ConvertFlags {
  dtype?: OutputDtype;
  mkdir?: boolean;
  prune?: boolean;
  bakeVae?: string;
  fixClip?: boolean;
  layout?: string;
  json?: boolean;
}

export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description(
      "convert a checkpoint (ckpt → safetensors or back), optionally changing precision, pruning, baking a VAE, renaming keys to the ldm layout",
    )
    .argument("<in>", "input checkpoint")
    .argument("<out>", "output file: *.safetensors or *.ckpt (never an input)")
    .addOption(dtypeOption("float precision of the output (default: as the input)"))
    .option("--prune", "drop EMA, optimizer and training leftovers; keep only the architecture's tensors")
    .option("--bake-vae <vae>", "replace the VAE with this file's (.ckpt, .safetensors, .vae.pt)")
    .option("--fix-clip", "reset CLIP position_ids to int64 arange(77)")
    .option(
      "--layout <layout>",
      "rename the keys to this layout: ldm (the single-file layout merges read) from the kohya/diffusers one",
    )
    .addOption(mkdirOption())
    .option("--json", "print the result as JSON")
    .action(async (input: string, output: string, flags: ConvertFlags) => {
      await prepareOutputFolder(output, flags.mkdir);
      const result = await convertCheckpoint({
        input,
        output,
        ...(flags.dtype ? { dtype: parsePrecision(flags.dtype) } : {}),
        ...(flags.prune ? { prune: true } : {}),
        ...(flags.bakeVae ? { bakeVae: flags.bakeVae } : {}),
        ...(flags.fixClip ? { fixClip: true } : {}),
        ...(flags.layout ? { layout: flags.layout } : {}),
        onProgress: progressBar({ quiet: flags.json ?? false }),
      });
      if (flags.json) {
        printJson(result);
        return;
      }
      const relayout = result.relayout;
      const notes = [
        relayout ? `keys renamed ${relayout.from} → ${relayout.to}${relayoutDetail(relayout)}` : "",
        result.dropped.length ? `pruned ${result.dropped.length} tensors` : "",
        result.bakedVaeKeys ? `baked ${result.bakedVaeKeys} VAE tensors` : "",
        result.fixedPositionIds.length ? `reset ${result.fixedPositionIds.join(", ")}` : "",
      ].filter(Boolean);
      process.stdout.write(
        `wrote ${result.output}: ${result.tensors} tensors, ${formatBytes(result.bytes)}${notes.length ? ` (${notes.join("; ")})` : ""}\n`,
      );
      if (result.dataSha256)
        process.stdout.write(
          `AutoV3 ${result.dataSha256.slice(0, 12)}  (sha256 of the tensor data ${result.dataSha256})\n`,
        );
    });
}

/** ", 8 reshaped, 64 joined, 1 transposed, 1 added": what a layout change did besides renaming. */
function relayoutDetail(report: RelayoutReport): string {
  const parts = [
    report.reshaped.length ? `${report.reshaped.length} reshaped to 1x1 convolutions` : "",
    report.joined.length ? `${report.joined.length} joined from q/k/v` : "",
    report.transposed.length ? `${report.transposed.length} transposed` : "",
    report.added.length ? `added ${report.added.join(", ")}` : "",
  ].filter(Boolean);
  return parts.length ? `, ${parts.join(", ")}` : "";
}
