import { spawn } from "node:child_process";
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { SyntheticOptions } from "../src/synth/synthetic-model.js";
import { type SyntheticFormat, writeSyntheticCheckpoint } from "../src/synth/write-synthetic.js";

export const REPO_ROOT = new URL("..", import.meta.url).pathname;
export const CLI = join(REPO_ROOT, "dist/cli/gyoza.cjs");

/** Writes a synthetic checkpoint unless a file of that name already exists (reused across runs). */
export async function ensureSynthetic(
  path: string,
  options: SyntheticOptions,
  format: SyntheticFormat = "safetensors",
): Promise<number> {
  const existing = await stat(path).catch(() => undefined);
  if (existing) return existing.size;
  await mkdir(join(path, ".."), { recursive: true });
  process.stdout.write(`generating ${path} …\n`);
  return writeSyntheticCheckpoint(path, options, format);
}

export interface ChildRun {
  seconds: number;
  maxRssMb: number;
  stdout: string;
}

/** Runs the built CLI in a child process, timing it and reading its peak RSS. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      ["--import", join(REPO_ROOT, "bench/report-rss.mjs"), CLI, ...args],
      {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => {
      const seconds = (performance.now() - started) / 1000;
      const rss = /GYOZA_BENCH_MAX_RSS_KB=(\d+)/.exec(stderr);
      if (code !== 0) reject(new Error(`gyoza ${args.join(" ")} failed (${code}):\n${stderr}`));
      else resolve({ seconds, maxRssMb: rss ? Number(rss[1]) / 1024 : Number.NaN, stdout });
    });
  });
}

export function ratio(value: number, baseline: number): string {
  return `${(value / baseline).toFixed(2)}×`;
}
