// Preloaded into a benchmarked child process: prints its peak RSS when it exits. On Linux from
// /proc/self/status (VmHWM, this program's own high-water mark): getrusage's maxrss also counts the
// memory of the parent the child was forked from, before exec.
import { readFileSync } from "node:fs";

function peakRssKb() {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (match) return Number(match[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}

process.on("exit", () => {
  process.stderr.write(`\nGYOZA_BENCH_MAX_RSS_KB=${peakRssKb()}\n`);
});
