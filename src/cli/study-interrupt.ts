import { isGyozaError } from "../errors.js";
import { cleanUpAndExit, EXIT_INTERRUPTED } from "./run.js";

/**
 * Ctrl-C during a long study (`gyoza automix run/resume`, in-process or over Redis): the CLI's own
 * handler exits at once, but a study should stop where nothing is lost, so while it runs the first
 * Ctrl-C aborts `signal` (saying so: `stopping`) and a second exits at once. `restore()` puts the
 * CLI's handlers back.
 */
export function gracefulSigint(stopping: string): { signal: AbortSignal; restore(): void } {
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) cleanUpAndExit(EXIT_INTERRUPTED);
    process.stderr.write(`\ngyoza: ${stopping} (Ctrl-C again to stop now)\n`);
    controller.abort();
  };
  const previous = process.listeners("SIGINT");
  process.removeAllListeners("SIGINT");
  process.on("SIGINT", onSigint);
  return {
    signal: controller.signal,
    restore() {
      process.off("SIGINT", onSigint);
      for (const listener of previous) process.on("SIGINT", listener);
    },
  };
}

/**
 * A study stopped by Ctrl-C (an "interrupted" error): says its finished trials are kept and how to
 * go on, sets the exit code, and returns true. Any other error: false (the caller rethrows it).
 */
export function reportStudyStopped(error: unknown, study: string, resume: string): boolean {
  if (!isGyozaError(error) || error.code !== "interrupted") return false;
  process.stderr.write(`gyoza: study ${study} stopped; finished trials are kept. Continue with: ${resume}\n`);
  process.exitCode = EXIT_INTERRUPTED;
  return true;
}
