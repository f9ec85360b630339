import { describe, expect, it } from "vitest";
import { runCli } from "../../test-support/run-cli.js";

describe("gyoza worker", () => {
  it("refuses a backend it cannot drive yet, before connecting anywhere", async () => {
    const run = await runCli("worker", "--backend", "comfyui", "--redis", "redis://127.0.0.1:1");
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/backend "comfyui" cannot run automix evaluations yet/);
    expect(run.stderr).toMatch(/--backend stand-in/);
  });

  it("refuses a Redis URL that is not one", async () => {
    const run = await runCli("worker", "--backend", "stand-in", "--redis", "localhost:6379");
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/"localhost:6379" is not a Redis URL/);
  });
});
