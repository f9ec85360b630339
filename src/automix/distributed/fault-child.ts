/**
 * A worker or coordinator in a process of its own, for the fault tests (killed with SIGKILL there):
 * `tsx fault-child.ts worker|coordinator JSON-OPTIONS`. Imports only the distributed modules, so it
 * starts in a fraction of the whole CLI's time. Prints "ready" once taking jobs, and the coordinator's
 * summary as one JSON line at the end.
 */
import { runDistributedStudy } from "./coordinator.js";
import { standInEvaluator } from "./evaluate.js";
import { startEvaluationWorker } from "./worker.js";

const [role, json] = process.argv.slice(2);
const options = JSON.parse(json ?? "{}");
const log = (line: string) => process.stderr.write(`${line}\n`);

if (role === "worker") {
  const worker = await startEvaluationWorker({
    redisUrl: options.redisUrl,
    evaluator: standInEvaluator(options.delayMs),
    inputDirs: options.inputDirs ?? [],
    name: options.name,
    lockDurationMs: options.lockDurationMs,
    stalledIntervalMs: options.stalledIntervalMs,
    hashCacheDir: options.hashCacheDir,
    log,
  });
  const stop = () => void worker.close();
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  await worker.ready();
  log("ready");
  await worker.closed();
} else if (role === "coordinator") {
  const summary = await runDistributedStudy({ ...options, log });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} else {
  log(`unknown role ${role}`);
  process.exitCode = 2;
}
