/**
 * Distributed automix throughput (issue #24, "Checked by numbers"): 100 trials through BullMQ on a
 * redis-server this script starts (random port, temp dir) with N = 1, 2, 4, 8 workers and N jobs
 * in flight. Prints wall time, trials per second and the speed-up over N = 1 (ideal: N×).
 *
 *   npm run bench:automix-workers                  # study mode: real study jobs, 2 images × 100 ms
 *   npm run bench:automix-workers -- --image-ms 200 --images 4 --workers 1,2,4 --json
 *   npm run bench:automix-workers -- --mode synthetic --delay-ms 200   # the queue alone
 *
 * Study mode (automix-workers-study.ts): each worker is a `gyoza worker --backend comfy` process
 * with a ComfyUI stand-in of its own that takes a fixed time per image; workers merge, stage,
 * render and score real candidates of a study file planned and run as `gyoza automix run --redis`
 * does. Also prints where a trial's time goes (merge, generate, score, queue + idle) and the CPU it
 * costs: on a small machine the tiny merges' CPU, not the stand-in's waits, is the limit.
 * Synthetic mode (automix-workers-synthetic.ts): weight-space jobs that only sleep --delay-ms, N
 * workers in this process: the queue's own overhead.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RedisTestServer } from "../src/automix/distributed/redis-test-server.js";
import { prepareStudyBench, type StudyRun } from "./automix-workers-study.js";
import { runSynthetic } from "./automix-workers-synthetic.js";

interface Row {
  workers: number;
  trials: number;
  seconds: number;
  trialsPerSecond: number;
  speedUp: number;
  ideal: number;
  /** Study mode only. */
  study?: StudyRow;
}

interface StudyRow extends StudyRun {
  /** Each worker's time per trial outside its evaluation: N × wall / trials − mean total (s). */
  readonly queueAndIdle: number;
  /** CPU seconds per trial, all processes but Redis. */
  readonly cpuPerTrial: number;
  /** CPU seconds per wall second: how many cores the run kept busy. */
  readonly coresBusy: number;
}

const USAGE =
  "usage: bench/automix-workers.ts [--mode study|synthetic] [--trials N] [--workers 1,2,4,8] [--json]\n" +
  "  study: [--image-ms MS] [--images N] [--size micro|tiny]    synthetic: [--delay-ms MS]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: "string", default: "study" },
      trials: { type: "string", default: "100" },
      workers: { type: "string", default: "1,2,4,8" },
      "image-ms": { type: "string" },
      images: { type: "string" },
      size: { type: "string" },
      "delay-ms": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const mode = values.mode;
  const trials = Number(values.trials);
  const counts = values.workers.split(",").map(Number);
  const imageMs = Number(values["image-ms"] ?? 100);
  const images = Number(values.images ?? 2);
  const size = values.size ?? "micro";
  const delayMs = Number(values["delay-ms"] ?? 200);
  const fail = (message: string): never => {
    throw new Error(`${message}\n${USAGE}`);
  };
  if (mode !== "study" && mode !== "synthetic") fail(`--mode is study or synthetic, not "${mode}"`);
  if (!Number.isInteger(trials) || trials < 1 || counts.some((n) => !Number.isInteger(n) || n < 1))
    fail("--trials and --workers take positive integers");
  if (mode === "study") {
    if (values["delay-ms"] !== undefined) fail("--delay-ms is for --mode synthetic (study mode: --image-ms)");
    if (!Number.isFinite(imageMs) || imageMs < 0) fail("--image-ms takes a number of milliseconds");
    if (!Number.isInteger(images) || images < 1 || images > 16) fail("--images takes 1 to 16");
    if (size !== "micro" && size !== "tiny") fail("--size is micro or tiny");
  } else {
    for (const flag of ["image-ms", "images", "size"] as const)
      if (values[flag] !== undefined) fail(`--${flag} is for --mode study`);
    if (!Number.isFinite(delayMs) || delayMs < 0) fail("--delay-ms takes a number of milliseconds");
  }
  if (!RedisTestServer.available())
    throw new Error("redis-server is not installed (Debian: apt install redis-server)");

  const load = loadavg()[0] as number;
  const progress = (line: string) => {
    if (!values.json) process.stderr.write(line);
  };
  const dir = await mkdtemp(join(tmpdir(), "gyoza-bench-workers-"));
  const redis = await RedisTestServer.start(dir);
  const rows: Row[] = [];
  try {
    const bench =
      mode === "study"
        ? await prepareStudyBench({
            redisUrl: redis.url,
            dir,
            imageMs,
            images,
            size: size as "micro" | "tiny",
            log: (line) => process.stderr.write(`${line}\n`),
          })
        : undefined;
    try {
      for (const n of counts) {
        const onTrial = (done: number) => progress(`\r  N = ${n}: ${done}/${trials} trials`);
        let seconds: number;
        let study: StudyRow | undefined;
        if (bench) {
          const run = await bench.run(n, trials, onTrial);
          seconds = run.seconds;
          const cpu = run.workerCpu + run.benchCpu;
          study = {
            ...run,
            queueAndIdle: (n * seconds) / trials - run.means.total,
            cpuPerTrial: cpu / trials,
            coresBusy: cpu / seconds,
          };
        } else {
          seconds = await runSynthetic({ redisUrl: redis.url, dir, workers: n, trials, delayMs, onTrial });
        }
        progress("\n");
        if (study && study.failed > 0) progress(`  N = ${n}: ${study.failed} trials failed\n`);
        const base = rows[0];
        rows.push({
          workers: n,
          trials,
          seconds,
          trialsPerSecond: trials / seconds,
          speedUp: base ? base.seconds / seconds : 1,
          ideal: base ? n / base.workers : 1,
          ...(study ? { study } : {}),
        });
      }
    } finally {
      await bench?.close();
    }
  } finally {
    await redis.kill();
    await rm(dir, { recursive: true, force: true });
  }

  const machine = { cpus: cpus().length, loadAverage: load };
  if (values.json) {
    const settings = mode === "study" ? { imageMs, images, size } : { delayMs };
    process.stdout.write(`${JSON.stringify({ mode, trials, ...settings, machine, rows }, null, 2)}\n`);
    return;
  }
  const ms = (seconds: number) => `${Math.round(seconds * 1000)} ms`;
  const where = `${machine.cpus} CPUs, load average ${load.toFixed(2)} at the start`;
  if (mode === "synthetic") {
    console.log(
      `\n${trials} trials, ${delayMs} ms per evaluation (stand-in evaluator), N jobs in flight; ${where}\n`,
    );
    console.log("| workers | wall time | trials/s | speed-up | ideal |");
    console.log("|--:|--:|--:|--:|--:|");
    for (const row of rows)
      console.log(
        `| ${row.workers} | ${row.seconds.toFixed(2)} s | ${row.trialsPerSecond.toFixed(2)} | ${row.speedUp.toFixed(2)}× | ${row.ideal}× |`,
      );
    return;
  }
  console.log(
    `\n${trials} study trials, ${images} images × ${imageMs} ms each (ComfyUI stand-ins), ${size} inputs, ` +
      `N gyoza worker processes, N jobs in flight; ${where}\n`,
  );
  console.log(
    "| workers | wall time | trials/s | speed-up | ideal | merge | generate | score | queue + idle | CPU/trial | cores busy |",
  );
  console.log("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (const row of rows) {
    const s = row.study as StudyRow;
    console.log(
      `| ${row.workers} | ${row.seconds.toFixed(2)} s | ${row.trialsPerSecond.toFixed(2)} | ${row.speedUp.toFixed(2)}× | ${row.ideal}× | ` +
        `${ms(s.means.merge)} | ${ms(s.means.generate)} | ${ms(s.means.score)} | ${ms(s.queueAndIdle)} | ${ms(s.cpuPerTrial)} | ${s.coresBusy.toFixed(2)} |`,
    );
  }
  console.log(
    "\nmerge, generate, score: means per trial as the workers measured them (merge includes hashing the" +
      " candidate and staging it in the ComfyUI model folder). queue + idle: N × wall / trials minus a" +
      " trial's evaluation — each worker's time per trial outside it (job fetch and lock, input check," +
      " the result's way back, the coordinator's record and next enqueue, idle workers in the last wave)." +
      " CPU/trial: the worker processes' CPU plus this process's (coordinator, ComfyUI stand-ins), Redis" +
      " not counted; cores busy: that CPU per wall second.",
  );
}

await main();
