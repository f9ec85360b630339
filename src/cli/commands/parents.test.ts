import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache("gyoza-cli-parents-", (path) => {
  dir = path;
});
const models = () => join(dir, "models");
const model = (name: string) => join(models(), `${name}.safetensors`);

interface ParentsJson {
  pairs: { a: string; b: string; explained?: boolean; solvedSlots?: number }[];
  candidates: { path: string }[];
  skipped: { path: string; cause: string; reason: string }[];
}

beforeAll(async () => {
  await mkdir(models(), { recursive: true });
  // two parents at the target's shapes, and a smaller model (widths ÷ 64 instead of ÷ 16) beside them
  for (const [name, seed, size] of [
    ["anime", 1, "tiny"],
    ["texture", 2, "tiny"],
    ["tiny", 3, "micro"],
  ] as const)
    await writeSyntheticCheckpoint(model(name), { layout: "sd1-ldm", size, dtype: "F16", seed });
  const merged = await runCli(
    "merge",
    model("anime"),
    model("texture"),
    "--alpha",
    "COSINE",
    "-o",
    join(dir, "merged.safetensors"),
    "--metadata",
    "none",
  );
  expect(merged.code, merged.stderr).toBe(0);
}, 120_000);

describe("gyoza parents", { timeout: 120_000 }, () => {
  it("skips a model whose tensor shapes differ from the target's instead of ranking it first", async () => {
    const args = ["parents", join(dir, "merged.safetensors"), "--search", models(), "--samples", "50000"];
    const json = await runCli(...args, "--json");
    expect(json.code, json.stderr).toBe(0);
    const result = JSON.parse(json.stdout) as ParentsJson;
    expect([result.pairs[0]!.a, result.pairs[0]!.b].sort()).toEqual([model("anime"), model("texture")]);
    expect(result.pairs).toHaveLength(1);
    expect(result.pairs[0]!.explained).toBe(true);
    expect(result.pairs[0]!.solvedSlots).toBe(26);
    expect(result.candidates.map((c) => c.path)).not.toContain(model("tiny"));
    expect(result.skipped).toEqual([
      { path: model("tiny"), cause: "shapes", reason: expect.stringMatching(/shape/) },
    ]);

    const human = await runCli(...args);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain("skipped 1 file: tensor shapes differ from the target (tiny.safetensors)");
    expect(human.stdout).toMatch(/^1\. .*anime\.safetensors \+ .*texture\.safetensors: .*explained/m);
    expect(human.stdout).toContain("26 of 26 slots solved");
  });
});
