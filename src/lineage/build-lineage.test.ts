import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRecipe } from "../engine/run-recipe.js";
import { hashFile } from "../hash/index.js";
import { createJsKernel } from "../kernels/index.js";
import { recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { type LineageNode, lineageFromMetadata, readLineage } from "./build-lineage.js";
import { HashIndex } from "./search-by-hash.js";

let dir: string;
let cacheDir: string;
const kernel = createJsKernel();
const sha = (seed: string) => seed.repeat(64).slice(0, 64);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-lineage-"));
  cacheDir = join(dir, "cache");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Drops what a test does not compare (the root's own hashes). */
const shape = (node: LineageNode): unknown => ({
  name: node.name,
  ...(node.role ? { role: node.role } : {}),
  ...(node.merge ? { merge: node.merge.tool } : {}),
  ...(node.cut ? { cut: node.cut } : {}),
  parents: node.parents.map(shape),
});

describe("lineage of gyoza merges", () => {
  it("shows a merge of a merge as a tree, and finds moved ancestors by hash", async () => {
    for (const [name, seed] of [
      ["a", 31],
      ["b", 32],
      ["c", 33],
    ] as const) {
      const options = { layout: "sd1-ldm", size: "micro", dtype: "F16", seed } as const;
      await writeSyntheticCheckpoint(join(dir, `${name}.safetensors`), options);
    }
    const merge = (inputs: Record<string, string>, output: string, alpha: number) =>
      runRecipe(
        recipeFromData({
          gyoza: 1,
          inputs: Object.fromEntries(
            Object.entries(inputs).map(([k, file]) => [k, { path: join(dir, file) }]),
          ),
          steps: { mix: { method: "weighted_sum", inputs: { a: "first", b: "second" }, alpha } },
          output: { path: join(dir, output), metadata: "full" },
        }),
        { kernel, hashCacheDir: cacheDir },
      );
    await merge({ first: "a.safetensors", second: "b.safetensors" }, "m1.safetensors", 0.5);
    await merge({ first: "m1.safetensors", second: "c.safetensors" }, "m2.safetensors", 0.25);
    const library = join(dir, "library");
    await mkdir(library, { recursive: true });
    await rename(join(dir, "a.safetensors"), join(library, "renamed-a.safetensors"));

    const tree = await readLineage(join(dir, "m2.safetensors"), {
      searchDirs: [library],
      hashCacheDir: cacheDir,
    });
    expect(shape(tree)).toEqual({
      name: "m2.safetensors",
      merge: "gyoza",
      parents: [
        {
          name: "m1.safetensors",
          role: "first",
          merge: "gyoza",
          parents: [
            { name: "a.safetensors", role: "A", parents: [] },
            { name: "b.safetensors", role: "B", parents: [] },
          ],
        },
        { name: "c.safetensors", role: "second", parents: [] },
      ],
    });
    expect(tree.merge?.summary).toBe("gyoza: mix = weighted_sum(a: first, b: second, alpha 0.25)");
    expect(tree.parents[0]!.merge?.summary).toBe("gyoza: weighted_sum × 0.5");
    const a = tree.parents[0]!.parents[0]!;
    expect(a.found).toEqual([{ path: join(library, "renamed-a.safetensors"), matchedBy: "sha256" }]);
    expect(a.hashes.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(tree.parents[0]!.hashes.autov3).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("lineage from other tools' metadata", () => {
  it("follows A1111 sd_merge_models through nested recipes stored as JSON strings", () => {
    const parentRecipe = JSON.stringify({
      type: "webui",
      primary_model_hash: sha("1"),
      secondary_model_hash: sha("2"),
      tertiary_model_hash: null,
      interp_method: "Weighted sum",
      multiplier: 0.3,
    });
    const metadata = {
      sd_merge_recipe: JSON.stringify({
        type: "webui",
        primary_model_hash: sha("3"),
        secondary_model_hash: sha("4"),
        tertiary_model_hash: sha("5"),
        interp_method: "Add difference",
        multiplier: 1,
      }),
      sd_merge_models: JSON.stringify({
        [sha("1")]: { name: "anything-v3.safetensors", legacy_hash: "11111111", sd_merge_recipe: null },
        [sha("2")]: { name: "counterfeit.ckpt", legacy_hash: "22222222", sd_merge_recipe: null },
        [sha("3")]: { name: "mix-a.safetensors", legacy_hash: "33333333", sd_merge_recipe: parentRecipe },
        [sha("4")]: { name: "waifu.ckpt", legacy_hash: "44444444", sd_merge_recipe: null },
        [sha("5")]: { name: "sd-v1-5.ckpt", legacy_hash: "55555555", sd_merge_recipe: null },
      }),
    };
    const tree = lineageFromMetadata({ name: "final.safetensors", hashes: {} }, metadata);
    expect(shape(tree)).toEqual({
      name: "final.safetensors",
      merge: "a1111",
      parents: [
        {
          name: "mix-a.safetensors",
          role: "A",
          merge: "a1111",
          parents: [
            { name: "anything-v3.safetensors", role: "A", parents: [] },
            { name: "counterfeit.ckpt", role: "B", parents: [] },
          ],
        },
        { name: "waifu.ckpt", role: "B", parents: [] },
        { name: "sd-v1-5.ckpt", role: "C", parents: [] },
      ],
    });
    expect(tree.merge?.summary).toBe("a1111: Add difference × 1");
    expect(tree.parents[1]!.hashes).toEqual({ sha256: sha("4"), legacyHash: "44444444" });
  });

  it("reads supermerger's model_a/model_b and describes its mode and block weights", () => {
    const metadata = {
      sd_merge_recipe: JSON.stringify({
        type: "sd-webui-supermerger",
        weights_alpha: "0,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0",
        model_a: sha("a"),
        model_b: sha("b"),
        model_c: null,
        base_alpha: 0,
        mode: "Weight sum",
        mbw: true,
        elemental_merge: "",
        calcmode: "normal",
      }),
      sd_merge_models: JSON.stringify({ [sha("a")]: { name: "base.safetensors", legacy_hash: "aaaaaaaa" } }),
    };
    const tree = lineageFromMetadata({ name: "sm.safetensors", hashes: {} }, metadata);
    expect(tree.merge).toEqual({
      tool: "supermerger",
      summary: "supermerger: Weight sum, alpha 0,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0",
    });
    expect(tree.parents.map((p) => [p.role, p.name, p.hashes.sha256])).toEqual([
      ["A", "base.safetensors", sha("a")],
      ["B", null, sha("b")],
    ]);
  });

  it("lists the models of an sd-mecha recipe by name", () => {
    const mecha = [
      'model "ghostmix_v20Bakedvae" "sd1-ldm" "weight"',
      'model "pure/v1-5-pruned"',
      'call "subtract" &0 &1',
      'model "dreamshaper_332"',
      'call "add_difference" &0 &2 alpha=1.0',
    ].join("\n");
    const tree = lineageFromMetadata({ name: "mecha.safetensors", hashes: {} }, { mecha_recipe: mecha });
    expect(tree.merge).toEqual({ tool: "sd-mecha", summary: "sd-mecha: subtract → add_difference" });
    expect(tree.parents.map((p) => p.name)).toEqual([
      "ghostmix_v20Bakedvae",
      "v1-5-pruned",
      "dreamshaper_332",
    ]);
  });

  it("stops at an ancestor whose recorded recipe names itself (a cycle) instead of looping", () => {
    const selfish = JSON.stringify({
      type: "webui",
      primary_model_hash: sha("7"),
      interp_method: "Weighted sum",
    });
    const metadata = {
      sd_merge_recipe: selfish,
      sd_merge_models: JSON.stringify({ [sha("7")]: { name: "loop.safetensors", sd_merge_recipe: selfish } }),
    };
    const tree = lineageFromMetadata({ name: "x.safetensors", hashes: {} }, metadata);
    expect(shape(tree)).toEqual({
      name: "x.safetensors",
      merge: "a1111",
      parents: [
        {
          name: "loop.safetensors",
          role: "A",
          merge: "a1111",
          parents: [{ name: "loop.safetensors", role: "A", cut: "cycle", parents: [] }],
        },
      ],
    });
  });

  it("ignores malformed sd_merge_models entries and non-hash keys", () => {
    const metadata = {
      sd_merge_recipe: JSON.stringify({
        type: "webui",
        primary_model_hash: "not a hash",
        interp_method: "x",
      }),
      sd_merge_models: JSON.stringify({ "../../etc": { name: "evil" }, [sha("9")]: "string, not an object" }),
    };
    const tree = lineageFromMetadata({ name: "odd.safetensors", hashes: {} }, metadata);
    expect(tree.parents).toEqual([]);
  });

  it("matches an ancestor known only by A1111's legacy hash to a local file", async () => {
    const file = join(dir, "legacy-parent.safetensors");
    await writeFile(file, Buffer.alloc(0x110000, 7));
    const hashes = await hashFile(file, { algorithms: ["sha256", "autov1"], cacheDir: false });
    const index = HashIndex.of([{ path: file, size: 0x110000, hashes }]);
    expect(index.find({ legacyHash: hashes.a1111!.modelHash! })).toEqual([
      { path: file, matchedBy: "legacy-hash" },
    ]);
    expect(index.find({ legacyHash: hashes.a1111!.modelHash! }, true)).toEqual([]);
    expect(index.find({ autov2: hashes.sha256!.slice(0, 10).toLowerCase() })).toEqual([
      { path: file, matchedBy: "autov2" },
    ]);
  });
});
