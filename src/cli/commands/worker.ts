import type { Command } from "commander";
import { standInEvaluator } from "../../automix/distributed/evaluate.js";
import { redactedRedisUrl } from "../../automix/distributed/redis.js";
import { GyozaError } from "../../errors.js";
import { integerFlag } from "../flags.js";
import { cleanUpAndExit } from "../run.js";

interface WorkerFlags {
  backend: string;
  redis: string;
  inputs: string[];
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
      'the generation backend this worker drives ("stand-in": no images, a fixed delay)',
    )
    .requiredOption("--redis <url>", "the Redis the study's coordinator uses, e.g. redis://127.0.0.1:6379")
    .option(
      "--inputs <dirs...>",
      "folders holding the studies' input models (found by name, checked by sha256)",
      [],
    )
    .option("--name <name>", "this worker's name in results (default: host:pid)")
    .option(
      "--delay-ms <ms>",
      "stand-in backend: time per evaluation",
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
      if (flags.backend !== "stand-in")
        throw new GyozaError("unknown-id", `backend "${flags.backend}" cannot run automix evaluations yet`, {
          fix: "workers drive the stand-in backend (weight-space objectives) for now: --backend stand-in",
        });
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const { startEvaluationWorker } = await import("../../automix/distributed/worker.js");
      const worker = await startEvaluationWorker({
        redisUrl: flags.redis,
        evaluator: standInEvaluator(flags.delayMs),
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
      log(`worker ${worker.name}: taking jobs from ${redactedRedisUrl(flags.redis)}`);
      await worker.closed();
      log(`worker ${worker.name}: stopped`);
    });
}
