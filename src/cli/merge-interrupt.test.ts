import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";

/** The real CLI from source in a child process (tsx), as a user runs it. */
const CLI = new URL("./main.ts", import.meta.url).pathname;

function runCli(
  args: string[],
  options: { interrupt?: boolean } = {},
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    if (options.interrupt) {
      // interrupt once the merge is under way: its temp file exists
      const timer = setInterval(async () => {
        const names = await readdir(join(args[args.indexOf("-o") + 1]!, "..")).catch(() => [] as string[]);
        if (names.some((name) => name.endsWith(".gyoza-partial"))) {
          clearInterval(timer);
          child.kill("SIGINT");
        }
      }, 20);
      child.on("close", () => clearInterval(timer));
    }
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

let dir: string;
let a: string;
let b: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-cli-"));
  a = join(dir, "a.safetensors");
  b = join(dir, "b.safetensors");
  await writeSyntheticCheckpoint(a, { layout: "sd1-ldm", size: "tiny", dtype: "F32", seed: 1 });
  await writeSyntheticCheckpoint(b, { layout: "sd1-ldm", size: "tiny", dtype: "F32", seed: 2 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("gyoza merge when stopped or out of space", () => {
  it("removes its partial output when interrupted with Ctrl-C and leaves the inputs untouched", async () => {
    const before = [sha(a), sha(b)];
    const outDir = join(dir, "interrupted");
    mkdirSync(outDir);
    const output = join(outDir, "out.safetensors");
    // the plain-TypeScript kernel keeps the merge running long enough to be interrupted mid-way
    const result = await runCli(
      ["merge", a, b, "--alpha", "0.5", "--kernel", "js", "--no-hash-cache", "-o", output],
      { interrupt: true },
    );
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/interrupted/);
    expect(await readdir(outDir)).toEqual([]);
    expect([sha(a), sha(b)]).toEqual(before);
  });

  it("reports a full disk clearly and leaves no partial file on it", async (context) => {
    const small = join(dir, "small-disk");
    mkdirSync(small);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", small], { stdio: "ignore" });
    } catch {
      context.skip("mounting a small tmpfs needs root");
    }
    try {
      const result = await runCli([
        "merge",
        a,
        b,
        "--alpha",
        "0.5",
        "--no-hash-cache",
        "-o",
        join(small, "out.safetensors"),
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/no space left on the device/);
      expect(result.stderr).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
      expect(await readdir(small)).toEqual([]);
    } finally {
      execFileSync("umount", [small]);
    }
  });
});
