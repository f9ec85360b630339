import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir = "";
useTempDirWithHashCache("gyoza-worker-cli-", (path) => (dir = path));

describe("gyoza worker", () => {
  it("refuses a backend its gyoza.yaml does not name, before connecting anywhere", async () => {
    const config = join(dir, "gyoza.yaml");
    await writeFile(
      config,
      `backends:\n  comfy:\n    kind: comfyui\n    url: http://127.0.0.1:1\n    model_folder: ${dir}\n`,
    );
    const run = await runCli(
      "worker",
      "--backend",
      "comfyu",
      "--config",
      config,
      "--redis",
      "redis://127.0.0.1:1",
    );
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/no backend named 'comfyu' \(did you mean 'comfy'\?\)/);
  });

  it("refuses a missing gyoza.yaml with the way to write one", async () => {
    const run = await runCli(
      "worker",
      "--backend",
      "comfy",
      "--config",
      join(dir, "nowhere.yaml"),
      "--redis",
      "redis://127.0.0.1:1",
    );
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/cannot read the config/);
  });

  it("refuses a Redis URL that is not one", async () => {
    const run = await runCli("worker", "--backend", "stand-in", "--redis", "localhost:6379", "--work", dir);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/"localhost:6379" is not a Redis URL/);
  });
});
