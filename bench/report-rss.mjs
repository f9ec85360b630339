// Preloaded into a benchmarked child process: prints its peak RSS when it exits.
process.on("exit", () => {
  process.stderr.write(`\nGYOZA_BENCH_MAX_RSS_KB=${process.resourceUsage().maxRSS}\n`);
});
