import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type A1111Standin, startA1111Standin } from "../../test-support/a1111-standin.js";
import { writeTinyCheckpoint } from "../../test-support/backend-fixtures.js";
import { type ComfyStandin, startComfyStandin } from "../../test-support/comfyui-standin.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir = "";
useTempDirWithHashCache("gyoza-backend-cli-", (path) => {
  dir = path;
});

describe("gyoza backend", () => {
  let comfy: ComfyStandin;
  let a1111: A1111Standin;
  let blind: ComfyStandin;
  let config = "";
  beforeAll(async () => {
    const models = join(dir, "models");
    await mkdir(models);
    await writeTinyCheckpoint(join(models, "a.safetensors"), 1);
    comfy = await startComfyStandin({ modelFolder: models });
    a1111 = await startA1111Standin({ modelFolder: models });
    blind = await startComfyStandin({ modelFolder: models, cannotSeeFolder: true });
    config = join(dir, "gyoza.yaml");
    await writeFile(
      config,
      [
        "default_backend: comfy",
        "backends:",
        `  comfy: { kind: comfyui, url: "${comfy.url}", model_folder: models }`,
        `  forge: { kind: a1111, url: "${a1111.url}", model_folder: models, headers: { Authorization: secret } }`,
        `  blind: { kind: comfyui, url: "${blind.url}", model_folder: models }`,
      ].join("\n"),
    );
  });
  afterEach(() => {
    process.exitCode = undefined; // a failed check sets it; runCli reads it back
  });
  afterAll(async () => {
    await Promise.all([comfy.close(), a1111.close(), blind.close()]);
  });

  it("check passes for a backend that sees the model folder", async () => {
    const run = await runCli("backend", "check", "--config", config);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("comfy: ok");
    expect(run.stdout).toContain("sees model folder: a probe written to");
  });

  it("check --json for A1111 lists the items", async () => {
    const run = await runCli("backend", "check", "--config", config, "--backend", "forge", "--json");
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { backend: string; ok: boolean; items: { check: string }[] };
    expect(result.backend).toBe("forge");
    expect(result.items.map((item) => item.check)).toEqual([
      "reachable",
      "checkpoints",
      "samplers",
      "sees model folder",
    ]);
  });

  it("check of a backend that cannot see the folder exits 1 and prints the extra_model_paths fix", async () => {
    const run = await runCli("backend", "check", "--config", config, "--backend", "blind");
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("FAIL sees model folder");
    expect(run.stdout).toContain("extra_model_paths.yaml");
  });

  it("list names each backend and never prints header values", async () => {
    const run = await runCli("backend", "list", "--config", config);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("comfy (default): comfyui at");
    const json = await runCli("backend", "list", "--config", config, "--json");
    expect(json.stdout).not.toContain("secret");
    expect(JSON.parse(json.stdout).backends[1].headers).toEqual(["Authorization"]);
  });

  it("an unknown backend name is a usage error with a suggestion", async () => {
    const run = await runCli("backend", "check", "--config", config, "--backend", "comfi");
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("did you mean 'comfy'?");
  });
});
