import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hashFile } from "../../hash/index.js";
import { loadRecipe } from "../../recipe/index.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache("gyoza-cli-recipe-", (path) => {
  dir = path;
});

const micro = { layout: "sd1-ldm", size: "micro", dtype: "F16" } as const;

describe("gyoza recipe from", () => {
  it("writes a supermerger merge as a gyoza recipe with inputs found by hash and the losses as comments", async () => {
    const library = join(dir, "models");
    await mkdir(library, { recursive: true });
    const inputA = join(library, "base-renamed.safetensors");
    await writeSyntheticCheckpoint(inputA, { ...micro, seed: 61 });
    const shaA = (await hashFile(inputA, { algorithms: ["sha256"], cacheDir: false })).sha256!.toLowerCase();
    const merged = join(dir, "sm.safetensors");
    await writeSyntheticCheckpoint(merged, { ...micro, seed: 62 }, "safetensors", {
      sd_merge_recipe: JSON.stringify({
        type: "sd-webui-supermerger",
        weights_alpha: "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1,1,1,0.5,0,0,0,0,0,0,0,0,0,0,0,0",
        model_a: shaA,
        model_b: "c".repeat(64),
        model_c: null,
        base_alpha: 0,
        mode: "Weight sum",
        mbw: true,
        elemental_merge: "OUT04:attn2:0.2",
        calcmode: "normal",
        exclude: "IN00",
      }),
      sd_merge_models: JSON.stringify({
        ["c".repeat(64)]: { name: "style.safetensors", legacy_hash: "deadbeef" },
      }),
    });
    const out = join(dir, "imported.yaml");
    const { code, stdout, stderr } = await runCli("recipe", "from", merged, "--search", library, "-o", out);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`wrote ${out}`);
    expect(stdout).toContain(
      '! exclude = "IN00": supermerger\'s block inclusion/exclusion lists are not imported',
    );
    const text = await readFile(out, "utf8");
    expect(text.split("\n")[0]).toBe(`# imported from the supermerger sd_merge_recipe of ${merged}`);
    const recipe = loadRecipe(text);
    expect(recipe.inputs).toEqual({
      a: { path: inputA, sha256: shaA },
      b: { path: "style.safetensors", sha256: "c".repeat(64) },
    });
    expect(recipe.steps.merge).toMatchObject({
      method: "weighted_sum",
      arithmetic: "lerp",
      alpha: [
        0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1, 1, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      ],
      overrides: [{ block: "OUT04", pattern: "attn2", value: 0.2 }],
    });
  });

  it("prints the A1111 recipe as YAML, and JSON with --json", async () => {
    const merged = join(dir, "a1111.safetensors");
    await writeSyntheticCheckpoint(merged, { ...micro, seed: 63 }, "safetensors", {
      sd_merge_recipe: JSON.stringify({
        type: "webui",
        primary_model_hash: "1".repeat(64),
        secondary_model_hash: "2".repeat(64),
        interp_method: "Weighted sum",
        multiplier: 0.5,
        save_as_half: true,
        custom_name: "halfhalf",
      }),
    });
    const yaml = await runCli("recipe", "from", merged);
    expect(yaml.code, yaml.stderr).toBe(0);
    expect(yaml.stdout).toContain("method: weighted_sum");
    expect(yaml.stdout).toContain("path: halfhalf.safetensors");
    const json = await runCli("recipe", "from", merged, "--json");
    expect(JSON.parse(json.stdout)).toMatchObject({
      tool: "a1111",
      recipe: { steps: { merge: { alpha: 0.5 } } },
    });
  });

  it("exits 1 with the reasons when the merge cannot be expressed", async () => {
    const merged = join(dir, "copy.safetensors");
    await writeSyntheticCheckpoint(merged, { ...micro, seed: 64 }, "safetensors", {
      sd_merge_recipe: JSON.stringify({
        type: "webui",
        primary_model_hash: "1".repeat(64),
        interp_method: "No interpolation",
      }),
    });
    const { code, stdout, stderr } = await runCli("recipe", "from", merged);
    expect(code).toBe(1);
    expect(stdout).toMatch(/! interp_method = "No interpolation": .*gyoza convert/);
    expect(stderr).toMatch(/cannot be expressed as a gyoza recipe/);
  });

  it("exits 1 for a file without merge metadata", async () => {
    const plain = join(dir, "plain.safetensors");
    await writeSyntheticCheckpoint(plain, { ...micro, seed: 65 });
    const { code, stderr } = await runCli("recipe", "from", plain);
    expect(code).toBe(1);
    expect(stderr).toMatch(/records no merge recipe/);
  });
});
