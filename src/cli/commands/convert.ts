import type { Command } from "commander";
import { convertCheckpoint } from "../../engine/convert-checkpoint.js";
import { parsePrecision } from "../../io/dtype.js";
import { formatBytes, printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface ConvertFlags {
  dtype?: string;
  prune?: boolean;
  bakeVae?: string;
  fixClip?: boolean;
  json?: boolean;
}

export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description(
      "convert a checkpoint (ckpt → safetensors or back), optionally changing precision, pruning, baking a VAE",
    )
    .argument("<in>", "input checkpoint")
    .argument("<out>", "output file: *.safetensors or *.ckpt (never an input)")
    .option("--dtype <dtype>", "float precision of the output: fp16, bf16 or fp32")
    .option("--prune", "drop EMA, optimizer and training leftovers; keep only the architecture's tensors")
    .option("--bake-vae <vae>", "replace the VAE with this file's (.ckpt, .safetensors, .vae.pt)")
    .option("--fix-clip", "reset CLIP position_ids to int64 arange(77)")
    .option("--json", "print the result as JSON")
    .action(async (input: string, output: string, flags: ConvertFlags) => {
      const result = await convertCheckpoint({
        input,
        output,
        ...(flags.dtype ? { dtype: parsePrecision(flags.dtype) } : {}),
        ...(flags.prune ? { prune: true } : {}),
        ...(flags.bakeVae ? { bakeVae: flags.bakeVae } : {}),
        ...(flags.fixClip ? { fixClip: true } : {}),
        onProgress: progressBar({ quiet: flags.json ?? false }),
      });
      if (flags.json) {
        printJson(result);
        return;
      }
      const notes = [
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
