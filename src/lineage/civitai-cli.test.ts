import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { runCli } from "../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";

let dir: string;
let model: string;
useTempDirWithHashCache("gyoza-civitai-cli-", (path) => {
  dir = path;
});
beforeAll(async () => {
  model = join(dir, "model.ckpt");
  await writeSyntheticCheckpoint(
    model,
    { layout: "sd1-ldm", size: "micro", dtype: "F32", seed: 3, ema: true },
    "ckpt",
  );
});

const facts = { format: "PickleTensor", size: "full", fp: "fp32", type: "Model" };

describe("Civitai file facts in the CLI", () => {
  it("gyoza inspect shows them in a line and as the civitai field of --json", async () => {
    const human = await runCli("inspect", model);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain("civitai       PickleTensor · full · fp32 · Model");
    const json = await runCli("inspect", model, "--json");
    expect(JSON.parse(json.stdout).civitai).toEqual(facts);
  });

  it("gyoza hash --json adds them for checkpoints and leaves other files without", async () => {
    const text = join(dir, "notes.txt");
    await writeFile(text, "not a model");
    const { code, stdout, stderr } = await runCli("hash", model, text, "--json", "--algo", "sha256");
    expect(code, stderr).toBe(0);
    const [first, second] = JSON.parse(stdout);
    expect(first).toMatchObject({ file: model, civitai: facts });
    expect(Object.keys(second)).toEqual(["file", "size", "sha256"]);
  });
});
