/**
 * Conversions of full-size SD 1.5 checkpoints, each against the I/O floor of its own input measured in
 * the same run (cold cache: the input read while an output of the converted size is written,
 * concurrently, fsync at the end):
 *  - a fp32 `.ckpt` (torch zip, laid out as torch.save writes it) → fp16 safetensors;
 *  - the same `.ckpt` → fp16 `.ckpt`;
 *  - a fp16 safetensors → `.ckpt`.
 *
 *   npm run bench:convert [-- --dir DIR] [--rounds N] [--only safetensors|ckpt]
 *   (inputs are generated once into DIR and reused; --only ckpt runs the rows that write a .ckpt)
 */
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { ensureSynthetic, ratio, runCli } from "./bench-support.js";
import { coldStart, dropPageCache, ioFloorSeconds } from "./io-floor.js";

const argument = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};

interface Row {
  label: string;
  /** "safetensors" or "ckpt": the output's format, for --only. */
  group: "safetensors" | "ckpt";
  input: string;
  output: string;
  /** Output bytes relative to the input's (for the floor's write). */
  outputShare: number;
  args: string[];
}

async function main(): Promise<void> {
  const dir = argument("--dir") ?? "/tmp/gyoza-bench";
  const rounds = Number(argument("--rounds") ?? 3);
  const only = argument("--only");
  const fp32Ckpt = join(dir, "sd15-fp32.ckpt");
  const fp16Safetensors = join(dir, "a-fp16.safetensors");
  await ensureSynthetic(fp32Ckpt, { layout: "sd1-ldm", size: "full", dtype: "F32", seed: 11 }, "ckpt");
  await ensureSynthetic(fp16Safetensors, { layout: "sd1-ldm", size: "full", dtype: "F16", seed: 1 });
  if (!dropPageCache()) process.stdout.write("cannot drop the page cache (needs root): timings are warm\n");

  // the fp16 outputs are half the fp32 tensor data (position_ids stay int64; headers are small)
  const rows = (
    [
      {
        label: "fp32 .ckpt → fp16 safetensors",
        group: "safetensors",
        input: fp32Ckpt,
        output: join(dir, "converted-fp16.safetensors"),
        outputShare: 0.5,
        args: ["--dtype", "fp16"],
      },
      {
        label: "fp32 .ckpt → fp16 .ckpt",
        group: "ckpt",
        input: fp32Ckpt,
        output: join(dir, "converted-fp16.ckpt"),
        outputShare: 0.5,
        args: ["--dtype", "fp16"],
      },
      {
        label: "fp16 safetensors → fp16 .ckpt",
        group: "ckpt",
        input: fp16Safetensors,
        output: join(dir, "converted-fp16.ckpt"),
        outputShare: 1,
        args: [],
      },
    ] satisfies Row[]
  ).filter((row) => !only || row.group === only);
  if (rows.length === 0) throw new Error(`--only ${only}: no such group (safetensors, ckpt)`);

  const sizes = new Map(
    await Promise.all(rows.map(async (row) => [row.input, (await stat(row.input)).size] as const)),
  );
  // before every timed run: touch what the largest run fills (input and output), then drop the page cache
  const footprint = Math.max(...rows.map((row) => sizes.get(row.input)! * (1 + row.outputShare)));
  const cold = () => coldStart(footprint);
  // The disk's write speed varies from run to run here: alternate floor and gyoza, keep each one's best.
  const results = rows.map(() => ({
    floor: Number.POSITIVE_INFINITY,
    seconds: Number.POSITIVE_INFINITY,
    rssMb: 0,
    written: 0,
  }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, row] of rows.entries()) {
      const result = results[i]!;
      await rm(row.output, { force: true });
      const outputBytes = Math.round(sizes.get(row.input)! * row.outputShare);
      cold();
      const floor = await ioFloorSeconds([row.input], row.output, outputBytes);
      cold();
      const run = await runCli(["convert", row.input, row.output, ...row.args, "--json"]);
      result.floor = Math.min(result.floor, floor);
      result.seconds = Math.min(result.seconds, run.seconds);
      result.rssMb = Math.max(result.rssMb, run.maxRssMb);
      result.written = (await stat(row.output)).size;
      await rm(row.output, { force: true });
      process.stdout.write(
        `round ${round + 1}: ${row.label}: floor ${floor.toFixed(2)} s, gyoza ${run.seconds.toFixed(2)} s, peak RSS ${run.maxRssMb.toFixed(0)} MB\n`,
      );
    }
  }
  process.stdout.write(`\nbest of ${rounds} rounds each, cold cache every run\n`);
  for (const [i, row] of rows.entries()) {
    const { floor, seconds, rssMb, written } = results[i]!;
    process.stdout.write(
      `${row.label} (${(sizes.get(row.input)! / 1e9).toFixed(2)} GB → ${(written / 1e9).toFixed(2)} GB): I/O floor ${floor.toFixed(2)} s, gyoza convert ${seconds.toFixed(2)} s = ${ratio(seconds, floor)} the floor, peak RSS ${rssMb.toFixed(0)} MB (highest of all rounds)\n`,
    );
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
