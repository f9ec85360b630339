import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { redactedRedisUrl } from "../../automix/distributed/redis.js";
import type { GenerationBackend } from "../../backends/types.js";
import { defaultHashCacheDir } from "../../hash/hash-cache.js";
import { integerFlag } from "../flags.js";
import { cleanUpAndExit } from "../run.js";

interface WorkerFlags {
  backend: string;
  config?: string;
  redis: string;
  inputs: string[];
  work?: string;
  name?: string;
  delayMs: number;
  lockMs: number;
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description(
      "evaluate automix candidates from a Redis queue (BullMQ), one at a time: inputs checked by sha256, merge, generate, score, report",
    )
    .requiredOption(
      "--backend <name>",
      'the generation backend this worker drives: a backend of gyoza.yaml, or "stand-in" (in-process, no GPU)',
    )
    .option("--config <file>", "gyoza.yaml with the generation backends")
    .requiredOption("--redis <url>", "the Redis the study's coordinator uses, e.g. redis://127.0.0.1:6379")
    .option(
      "--inputs <dirs...>",
      "folders holding the studies' input models (found by name, checked by sha256)",
      [],
    )
    .option(
      "--work <dir>",
      "where candidates of weight-only studies are merged (deleted once scored; default: a folder in the temp dir)",
    )
    .option("--name <name>", "this worker's name in results (default: host:pid)")
    .option(
      "--delay-ms <ms>",
      "stand-in backend: time per weight-space evaluation (the throughput bench's jobs)",
      integerFlag("--delay-ms", 0, 3_600_000),
      200,
    )
    .option(
      "--lock-ms <ms>",
      "a job's lock; a killed worker's job goes to another worker after about this long",
      integerFlag("--lock-ms", 500, 3_600_000),
      30_000,
    )
    .action(async (flags: WorkerFlags) => {
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const work = resolve(flags.work ?? join(tmpdir(), "gyoza-worker"));
      // the backend first: a name gyoza.yaml does not have fails before anything connects
      const backend = await openWorkerBackend(flags, work);
      const { startEvaluationWorker } = await import("../../automix/distributed/worker.js");
      const { studyEvaluator } = await import("../../automix/distributed/study-evaluator.js");
      const evaluator = studyEvaluator({
        backend,
        work,
        hashCacheDir: defaultHashCacheDir(),
        weightSpaceDelayMs: flags.delayMs,
      });
      const worker = await startEvaluationWorker({
        redisUrl: flags.redis,
        evaluator: evaluator.evaluate,
        inputDirs: flags.inputs,
        name: flags.name,
        lockDurationMs: flags.lockMs,
        log,
      });
      // First Ctrl-C / SIGTERM: take no new job, finish and report the current one, exit. Second: exit now
      // (the job's lock lapses and another worker takes it).
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) cleanUpAndExit(signal === "SIGINT" ? 130 : 143);
        stopping = true;
        log(`worker ${worker.name}: ${signal}: finishing the current job, then stopping (again to stop now)`);
        void worker.close();
      };
      process.removeAllListeners("SIGINT");
      process.removeAllListeners("SIGTERM");
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
      await worker.ready();
      log(
        `worker ${worker.name}: taking jobs from ${redactedRedisUrl(flags.redis)} (backend ${flags.backend}, inputs from ${flags.inputs.join(", ") || "nowhere"})`,
      );
      await worker.closed();
      await evaluator.close();
      log(`worker ${worker.name}: stopped`);
    });
}

/** gyoza.yaml's backend NAME, or the in-process stand-in (its model folder under the work folder). */
async function openWorkerBackend(flags: WorkerFlags, work: string): Promise<GenerationBackend> {
  if (flags.backend === "stand-in") {
    const { StandInBackend } = await import("../../automix/standin-backend.js");
    const folder = join(work, "stand-in-models");
    await mkdir(folder, { recursive: true });
    return new StandInBackend(folder);
  }
  const { createBackend, loadGyozaConfig, pickBackend } = await import("../../backends/index.js");
  const config = await loadGyozaConfig(flags.config ? { path: flags.config } : {});
  return createBackend(pickBackend(config, flags.backend));
}
