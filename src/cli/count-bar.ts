import cliProgress from "cli-progress";

/**
 * A bar of things done out of a total (images, grid cells) with ETA on stderr, drawn only on a
 * terminal and not in `--json` mode. `tick(done)` moves it; `stop()` ends it.
 */
export function countBar(
  label: string,
  total: number,
  options: { quiet?: boolean } = {},
): { tick(done: number): void; stop(): void } {
  if (options.quiet || !process.stderr.isTTY) return { tick: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {value}/{total} | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { tick: (done) => bar.update(done), stop: () => bar.stop() };
}
