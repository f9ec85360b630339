import cliProgress from "cli-progress";
import type { ProgressListener } from "../progress.js";
import { formatBytes } from "./output.js";

/**
 * A progress bar with bytes and ETA on stderr, drawn only on a terminal and not in `--json` mode
 * (scripts get clean stdout).
 */
export function progressBar(options: { quiet?: boolean } = {}): ProgressListener {
  if (options.quiet || !process.stderr.isTTY) return () => {};
  let bar: cliProgress.SingleBar | undefined;
  let done = 0;
  let total = 0;
  return (event) => {
    if (event.type === "start") {
      total = event.totalBytes;
      done = 0;
      bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${event.task} [{bar}] {percentage}% | {doneText} / {totalText} | ETA {eta_formatted}`,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { doneText: formatBytes(0), totalText: formatBytes(total) });
    } else if (event.type === "advance") {
      done += event.bytes;
      bar?.update(done, { doneText: formatBytes(done), totalText: formatBytes(total) });
    } else {
      bar?.stop();
      bar = undefined;
    }
  };
}
