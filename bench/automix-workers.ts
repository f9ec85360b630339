/**
 * Distributed automix throughput (issue #24, "Checked by numbers"): N stand-in workers (a fixed
 * delay per evaluation, standing in for a backend's generation time) evaluate a 100-trial study
 * through BullMQ on a redis-server this script starts (random port, temp dir), N = 1, 2, 4, 8, with
 * N jobs in flight. Prints wall time, trials per second and the speed-up over N = 1; the ideal is
 * N×, the gap is the queue's per-job overhead (enqueue, fetch, lock, completion event, the study
 * log's fsync'd write).
 *
 *   npm run bench:automix-workers                          # 100 trials, 200 ms each
 *   npm run bench:automix-workers -- --trials 50 --delay-ms 100 --workers 1,2,4 --json
 *
 * Workers run in this process (each its own BullMQ worker and Redis connections, concurrency 1);
 * they only sleep, so one event loop carries all eight.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runDistributedStudy } from "../src/automix/distributed/coordinator.js";
import { standInEvaluator } from "../src/automix/distributed/evaluate.js";
import { RedisTestServer } from "../src/automix/distributed/redis-test-server.js";
import { startEvaluationWorker } from "../src/automix/distributed/worker.js";

interface Row {
  workers: number;
  trials: number;
  seconds: number;
  trialsPerSecond: number;
  speedUp: number;
  ideal: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      trials: { type: "string", default: "100" },
      "delay-ms": { type: "string", default: "200" },
      workers: { type: "string", default: "1,2,4,8" },
      json: { type: "boolean", default: false },
    },
  });
  const trials = Number(values.trials);
  const delayMs = Number(values["delay-ms"]);
  const counts = values.workers.split(",").map(Number);
  if (
    !Number.isInteger(trials) ||
    trials < 1 ||
    !Number.isFinite(delayMs) ||
    counts.some((n) => !Number.isInteger(n) || n < 1)
  )
    throw new Error("--trials and --workers take positive integers, --delay-ms a number");
  if (!RedisTestServer.available())
    throw new Error("redis-server is not installed (Debian: apt install redis-server)");
  const dir = await mkdtemp(join(tmpdir(), "gyoza-bench-workers-"));
  const redis = await RedisTestServer.start(dir);
  const rows: Row[] = [];
  try {
    for (const n of counts) {
      const workers = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          startEvaluationWorker({
            redisUrl: redis.url,
            evaluator: standInEvaluator(delayMs),
            inputDirs: [],
            name: `bench-${n}-${i}`,
          }),
        ),
      );
      await Promise.all(workers.map((worker) => worker.ready()));
      let done = 0;
      const started = performance.now();
      await runDistributedStudy({
        redisUrl: redis.url,
        logPath: join(dir, "study.db"),
        study: `bench-n${n}`,
        settings: {
          optimizer: "random",
          seed: 1,
          dimensions: 26,
          budget: trials,
          inFlight: n,
          recipe: {},
          inputs: [],
          objective: { kind: "weight-space", target: Array(26).fill(0.5) },
        },
        sweepMs: 1000,
        onTrial: () => {
          done++;
          if (!values.json) process.stderr.write(`\r  N = ${n}: ${done}/${trials} trials`);
        },
      });
      const seconds = (performance.now() - started) / 1000;
      if (!values.json) process.stderr.write("\n");
      await Promise.all(workers.map((worker) => worker.close()));
      const base = rows[0];
      rows.push({
        workers: n,
        trials,
        seconds,
        trialsPerSecond: trials / seconds,
        speedUp: base ? base.seconds / seconds : 1,
        ideal: base ? n / base.workers : 1,
      });
    }
  } finally {
    await redis.kill();
    await rm(dir, { recursive: true, force: true });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ trials, delayMs, rows }, null, 2)}\n`);
    return;
  }
  console.log(`\n${trials} trials, ${delayMs} ms per evaluation (stand-in backend), N jobs in flight\n`);
  console.log("| workers | wall time | trials/s | speed-up | ideal |");
  console.log("|--:|--:|--:|--:|--:|");
  for (const row of rows)
    console.log(
      `| ${row.workers} | ${row.seconds.toFixed(2)} s | ${row.trialsPerSecond.toFixed(2)} | ${row.speedUp.toFixed(2)}× | ${row.ideal}× |`,
    );
}

await main();
