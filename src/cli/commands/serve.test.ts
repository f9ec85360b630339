import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { runCli } from "../../test-support/run-cli.js";

/** The real CLI from source in a child process (tsx), as a user runs it. */
const CLI = new URL("../main.ts", import.meta.url).pathname;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-serve-cli-"));
  await mkdir(join(dir, "models"));
  await mkdir(join(dir, "out"));
  for (const seed of [1, 2]) {
    await writeSyntheticCheckpoint(join(dir, "models", `m${seed}.safetensors`), {
      layout: "sd1-ldm",
      size: "tiny",
      dtype: "F32",
      seed,
    });
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("gyoza serve", () => {
  it("refuses a non-loopback --host without --token (exit 2, with the fix)", async () => {
    const run = await runCli(
      "serve",
      "--library",
      join(dir, "refused.db"),
      "--host",
      "0.0.0.0",
      "--port",
      "0",
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/without --token/);
    expect(run.stderr).toMatch(/fix: /);
  });

  it("prints its URL with the token, and Ctrl-C during a merge job stops it leaving no partial file", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", CLI, "serve", "--library", join(dir, "library.db"), "--models", dir, "--port", "0"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    let stdout = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (data) => {
        stdout += data;
        const match = /^gyoza serve: (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32})$/m.exec(stdout);
        if (match) resolve(match[1]!);
      });
      child.on("close", () => reject(new Error(`exited before printing its URL: ${stdout}`)));
    });
    const { origin, searchParams } = new URL(url);
    const yaml = [
      "gyoza: 1",
      "inputs: { a: { path: models/m1.safetensors }, b: { path: models/m2.safetensors } }",
      "steps: { m: { method: weighted_sum, inputs: { a: a, b: b }, alpha: COSINE } }",
      "output: { path: out/stopped.safetensors, dtype: fp32 }",
    ].join("\n");
    const response = await fetch(`${origin}/api/jobs`, {
      method: "POST",
      headers: { Authorization: `Bearer ${searchParams.get("token")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ kind: "merge", yaml }),
    });
    expect(response.status).toBe(202);
    // Interrupt once the merge is writing: its temp file exists.
    let writing = false;
    for (let tries = 0; tries < 500 && !writing; tries++) {
      const names = await readdir(join(dir, "out"));
      writing = names.some((name) => name.endsWith(".gyoza-partial"));
      if (writing) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(writing).toBe(true);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(await readdir(join(dir, "out"))).toEqual([]);
    expect(existsSync(join(dir, "out", "stopped.safetensors"))).toBe(false);
  }, 30_000);
});
