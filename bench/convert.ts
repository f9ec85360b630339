/**
 * A full-size SD 1.5 fp32 `.ckpt` (torch zip, as torch.save writes it) converted to fp16
 * safetensors, against the I/O floor measured in the same run (cold cache: the input read while an
 * output of the converted size is written, concurrently, fsync at the end).
 *
 *   npm run bench:convert [-- --dir DIR] [--rounds N]   (the input is generated once into DIR and reused)
 */
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { ensureSynthetic, ratio, runCli } from "./bench-support.js";
import { coldStart, dropPageCache, ioFloorSeconds } from "./io-floor.js";

async function main(): Promise<void> {
  const dirAt = process.argv.indexOf("--dir");
  const dir = dirAt > 0 ? process.argv[dirAt + 1]! : "/tmp/gyoza-bench";
  const input = join(dir, "sd15-fp32.ckpt");
  await ensureSynthetic(input, { layout: "sd1-ldm", size: "full", dtype: "F32", seed: 11 }, "ckpt");
  const out = join(dir, "converted-fp16.safetensors");
  if (!dropPageCache()) process.stdout.write("cannot drop the page cache (needs root): timings are warm\n");

  await rm(out, { force: true });
  const inputBytes = (await stat(input)).size;
  // the output is the fp16 half of the fp32 tensor data (position_ids stay int64; the header is small)
  const outputBytes = Math.round(inputBytes / 2);
  // The disk's write speed varies from run to run here: alternate floor and gyoza, keep each one's best.
  const roundsAt = process.argv.indexOf("--rounds");
  const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 3;
  let floor = Number.POSITIVE_INFINITY;
  let best = { seconds: Number.POSITIVE_INFINITY, maxRssMb: 0 };
  let peakRssMb = 0;
  let written = 0;
  // before every timed run: touch what the run fills (input and output), then drop the page cache
  const cold = () => coldStart(inputBytes + outputBytes);
  for (let round = 0; round < rounds; round++) {
    cold();
    floor = Math.min(floor, await ioFloorSeconds([input], out, outputBytes));
    cold();
    const run = await runCli(["convert", input, out, "--dtype", "fp16", "--json"]);
    if (run.seconds < best.seconds) best = run;
    peakRssMb = Math.max(peakRssMb, run.maxRssMb);
    written = (await stat(out)).size;
    await rm(out, { force: true });
  }
  const run = best;
  process.stdout.write(
    `\ninput ${(inputBytes / 1e9).toFixed(2)} GB fp32 .ckpt → ${(written / 1e9).toFixed(2)} GB fp16 safetensors\n` +
      `best of ${rounds} rounds each, cold cache every run\n` +
      `I/O floor: ${floor.toFixed(2)} s\n` +
      `gyoza convert: ${run.seconds.toFixed(2)} s = ${ratio(run.seconds, floor)} the floor, peak RSS ${peakRssMb.toFixed(0)} MB (highest of all rounds)\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
