import { mkdir, readdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache("gyoza-cli-replay-", (path) => {
  dir = path;
});

describe("gyoza replay", () => {
  it("rebuilds a merge whose inputs were renamed and moved, finding them by hash, with the same AutoV3", async () => {
    const work = join(dir, "work");
    await mkdir(join(work, "models"), { recursive: true });
    await mkdir(join(work, "out"), { recursive: true });
    for (const [name, seed] of [
      ["anime", 21],
      ["composition", 22],
    ] as const) {
      await writeSyntheticCheckpoint(join(work, "models", `${name}.safetensors`), {
        layout: "sd1-ldm",
        size: "micro",
        dtype: "F16",
        seed,
      });
    }
    const recipe = join(work, "mix.yaml");
    await writeFile(
      recipe,
      [
        "gyoza: 1",
        "inputs:",
        "  anime: { path: models/anime.safetensors }",
        "  composition: { path: models/composition.safetensors }",
        "steps:",
        "  mix: { method: weighted_sum, inputs: { a: anime, b: composition }, alpha: COSINE }",
        "output: { path: out/mix.safetensors, dtype: fp16, metadata: hashes }",
        "",
      ].join("\n"),
    );
    const merge = await runCli("merge", recipe, "--json", "--kernel", "js");
    expect(merge.code, merge.stderr).toBe(0);
    const autoV3 = JSON.parse(merge.stdout).dataSha256 as string;

    const library = join(dir, "library");
    await mkdir(join(library, "deep", "er"), { recursive: true });
    await rename(join(work, "models", "anime.safetensors"), join(library, "deep", "er", "a1.safetensors"));
    await rename(join(work, "models", "composition.safetensors"), join(library, "comp-final.safetensors"));
    const mixed = join(work, "out", "mix.safetensors");

    const replay = await runCli("replay", mixed, "--search", library, "--json", "--kernel", "js");
    expect(replay.code, replay.stderr).toBe(0);
    const result = JSON.parse(replay.stdout);
    expect(result).toMatchObject({
      identical: true,
      actualAutoV3: autoV3,
      expectedAutoV3: autoV3,
      output: null,
    });
    expect(result.inputs.map((input: { path: string }) => input.path).sort()).toEqual([
      join(library, "comp-final.safetensors"),
      join(library, "deep", "er", "a1.safetensors"),
    ]);

    const human = await runCli("replay", mixed, "--search", library, "-o", join(dir, "again.safetensors"));
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(`identical: AutoV3 ${autoV3.slice(0, 12)}`);
    expect(human.stdout).toContain(`wrote ${join(dir, "again.safetensors")}`);
    expect(await readdir(dir)).toContain("again.safetensors");
  });

  it("exits 1 and names the input when a searched folder lacks it", async () => {
    const empty = join(dir, "empty");
    await mkdir(empty, { recursive: true });
    const merged = join(dir, "work", "out", "mix.safetensors");
    const replay = await runCli("replay", merged, "--search", empty);
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/input "anime".*no file with sha256/);
  });

  it("is a usage error without --search", async () => {
    const replay = await runCli("replay", join(dir, "work", "out", "mix.safetensors"));
    expect(replay.code).toBe(2);
    expect(replay.stderr).toMatch(/--search/);
  });
});
