import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runRecipe } from "../../engine/run-recipe.js";
import { hashFile } from "../../hash/index.js";
import { createJsKernel } from "../../kernels/index.js";
import { recipeFromData } from "../../recipe/index.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache("gyoza-cli-lineage-", (path) => {
  dir = path;
});

const micro = { layout: "sd1-ldm", size: "micro", dtype: "F16" } as const;

describe("gyoza lineage", () => {
  it("draws an A1111 merge tree and marks the ancestors found under --search", async () => {
    const library = join(dir, "models");
    await mkdir(library, { recursive: true });
    const parent = join(library, "whatever-it-is-called-now.safetensors");
    await writeSyntheticCheckpoint(parent, { ...micro, seed: 41 });
    const parentSha = (
      await hashFile(parent, { algorithms: ["sha256"], cacheDir: false })
    ).sha256!.toLowerCase();
    const other = "b".repeat(64);
    const merged = join(dir, "merged.safetensors");
    await writeSyntheticCheckpoint(merged, { ...micro, seed: 42 }, "safetensors", {
      sd_merge_recipe: JSON.stringify({
        type: "webui",
        primary_model_hash: parentSha,
        secondary_model_hash: other,
        interp_method: "Weighted sum",
        multiplier: 0.4,
      }),
      sd_merge_models: JSON.stringify({
        [parentSha]: { name: "anime-base.safetensors", legacy_hash: "0badc0de", sd_merge_recipe: null },
        [other]: { name: "realistic.safetensors", legacy_hash: "12345678", sd_merge_recipe: null },
      }),
    });

    const human = await runCli("lineage", merged, "--search", library);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.split("\n");
    expect(lines[0]).toMatch(/^merged\.safetensors \[SHA256 [0-9a-f]{10} · AutoV3 [0-9a-f]{12}\]$/);
    expect(lines[1]).toBe("│  a1111: Weighted sum × 0.4");
    expect(lines[2]).toBe(
      `├─ A: anime-base.safetensors [SHA256 ${parentSha.slice(0, 10)} · legacy 0badc0de]`,
    );
    expect(lines[3]).toBe(`│     found: ${parent} (by sha256)`);
    expect(lines[4]).toBe(`└─ B: realistic.safetensors [SHA256 bbbbbbbbbb · legacy 12345678]`);

    const json = await runCli("lineage", merged, "--json");
    expect(json.code, json.stderr).toBe(0);
    const tree = JSON.parse(json.stdout);
    expect(tree.parents.map((p: { name: string }) => p.name)).toEqual([
      "anime-base.safetensors",
      "realistic.safetensors",
    ]);
    expect(tree.parents[0].found).toBeUndefined();
  });

  it("says so when a file records no merge", async () => {
    const plain = join(dir, "plain.safetensors");
    await writeSyntheticCheckpoint(plain, { ...micro, seed: 43 });
    const { code, stdout } = await runCli("lineage", plain);
    expect(code).toBe(0);
    expect(stdout).toContain("(no merge recorded in this file's metadata)");
  });

  it("draws the GyozaMix recipe as its two steps, each with its weights and its own inputs", async () => {
    const models = join(dir, "gyozamix-models");
    await mkdir(models, { recursive: true });
    const model = (name: string) => join(models, `${name}.safetensors`);
    for (const [name, seed] of [
      ["anime-detail", 61],
      ["composition", 62],
      ["texture-tuned", 63],
    ] as const)
      await writeSyntheticCheckpoint(model(name), { ...micro, seed });
    const output = join(dir, "gyozamix.safetensors");
    await runRecipe(
      recipeFromData({
        gyoza: 1,
        inputs: {
          anime_detail: { path: model("anime-detail") },
          composition_model: { path: model("composition") },
          texture: { path: model("texture-tuned") },
        },
        steps: {
          composition: {
            method: "weighted_sum",
            inputs: { a: "anime_detail", b: "composition_model" },
            alpha: "REVERSE_COSINE",
          },
          final: { method: "weighted_sum", inputs: { a: "texture", b: "composition" }, alpha: "COSINE" },
        },
        output: { step: "final", path: output, dtype: "fp16", metadata: "full" },
      }),
      { kernel: createJsKernel(), hashCacheDir: false },
    );

    const human = await runCli("lineage", output, "--no-hash-cache");
    expect(human.code, human.stderr).toBe(0);
    const hashes = /^\[SHA256 [0-9a-f]{10} · AutoV3 [0-9a-f]{12}\]$/;
    const lines = human.stdout.trimEnd().split("\n");
    expect(lines.map((line) => line.replace(/\[SHA256 .*\]$/, "[…]"))).toEqual([
      "gyozamix.safetensors […]",
      "│  gyoza: final = weighted_sum(a: texture, b: composition, alpha COSINE)",
      "├─ texture: texture-tuned.safetensors […]",
      "└─ composition: (a step of this merge, not saved as a file)",
      "   │  gyoza: composition = weighted_sum(a: anime_detail, b: composition_model, alpha REVERSE_COSINE)",
      "   ├─ anime_detail: anime-detail.safetensors […]",
      "   └─ composition_model: composition.safetensors […]",
    ]);
    expect(lines[0]!.replace("gyozamix.safetensors ", "")).toMatch(hashes);

    const json = await runCli("lineage", output, "--no-hash-cache", "--json");
    expect(json.code, json.stderr).toBe(0);
    const tree = JSON.parse(json.stdout);
    expect(tree.merge).toMatchObject({ step: "final", method: "weighted_sum", weights: { alpha: "COSINE" } });
    expect(tree.parents.map((p: { role: string }) => p.role)).toEqual(["texture", "composition"]);
    const composition = tree.parents[1];
    expect(composition).toMatchObject({
      name: null,
      step: "composition",
      merge: { step: "composition", method: "weighted_sum", weights: { alpha: "REVERSE_COSINE" } },
    });
    expect(composition.parents.map((p: { name: string; role: string }) => [p.role, p.name])).toEqual([
      ["anime_detail", "anime-detail.safetensors"],
      ["composition_model", "composition.safetensors"],
    ]);
  });
});
