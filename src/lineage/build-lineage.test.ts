import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRecipe } from "../engine/run-recipe.js";
import { hashFile } from "../hash/index.js";
import { createJsKernel } from "../kernels/index.js";
import { recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { type LineageNode, lineageFromMetadata, MAX_LINEAGE_NODES, readLineage } from "./build-lineage.js";
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
  ...(node.step ? { step: node.step } : {}),
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
            { name: "a.safetensors", role: "input 1", parents: [] },
            { name: "b.safetensors", role: "input 2", parents: [] },
          ],
        },
        { name: "c.safetensors", role: "second", parents: [] },
      ],
    });
    expect(tree.merge?.summary).toBe("gyoza: mix = weighted_sum(a: first, b: second, alpha 0.25)");
    expect(tree.parents[0]!.merge?.summary).toBe(
      "gyoza: weighted_sum × 0.5 (last step only: every step is in that file's own gyoza_recipe)",
    );
    const a = tree.parents[0]!.parents[0]!;
    expect(a.found).toEqual([{ path: join(library, "renamed-a.safetensors"), matchedBy: "sha256" }]);
    expect(a.hashes.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(tree.parents[0]!.hashes.autov3).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("lineage of the GyozaMix recipe", () => {
  const micro = { layout: "sd1-ldm", size: "micro", dtype: "F16" } as const;
  const file = (name: string) => join(dir, "gyozamix", name);

  /** The recipe of src/recipe/examples/gyozamix.yaml on micro models, the VAE baked in (made once). */
  let made: Promise<string> | undefined;
  const gyozaMix = () => {
    made ??= mergeGyozaMix();
    return made;
  };
  async function mergeGyozaMix(): Promise<string> {
    await mkdir(file("models"), { recursive: true });
    for (const [name, seed] of [
      ["anime-detail", 51],
      ["composition", 52],
      ["texture-tuned", 53],
    ] as const)
      await writeSyntheticCheckpoint(file(`models/${name}.safetensors`), { ...micro, seed });
    await writeSyntheticCheckpoint(file("kl-f8-anime2.safetensors"), { ...micro, seed: 54, vaeOnly: true });
    const output = file("gyozamix-fp16.safetensors");
    await runRecipe(
      recipeFromData({
        gyoza: 1,
        inputs: {
          anime_detail: { path: file("models/anime-detail.safetensors") },
          composition_model: { path: file("models/composition.safetensors") },
          texture: { path: file("models/texture-tuned.safetensors") },
        },
        steps: {
          composition: {
            method: "weighted_sum",
            inputs: { a: "anime_detail", b: "composition_model" },
            alpha: "REVERSE_COSINE",
          },
          final: { method: "weighted_sum", inputs: { a: "texture", b: "composition" }, alpha: "COSINE" },
        },
        output: {
          step: "final",
          path: output,
          dtype: "fp16",
          prune: true,
          vae: { policy: "bake", file: file("kl-f8-anime2.safetensors") },
          metadata: "full",
          title: "GyozaMix",
          clip_skip: 2,
        },
      }),
      { kernel, hashCacheDir: cacheDir },
    );
    return output;
  }

  const gyozaMixTree = {
    name: "gyozamix-fp16.safetensors",
    merge: "gyoza",
    parents: [
      { name: "texture-tuned.safetensors", role: "texture", parents: [] },
      {
        name: null,
        role: "composition",
        step: "composition",
        merge: "gyoza",
        parents: [
          { name: "anime-detail.safetensors", role: "anime_detail", parents: [] },
          { name: "composition.safetensors", role: "composition_model", parents: [] },
        ],
      },
      { name: "kl-f8-anime2.safetensors", role: "baked VAE", parents: [] },
    ],
  };

  it("shows its two steps as a tree: final (COSINE) over texture and the composition step (REVERSE_COSINE) over the two models", async () => {
    const output = await gyozaMix();
    const tree = await readLineage(output, { hashCacheDir: cacheDir });
    expect(shape(tree)).toEqual(gyozaMixTree);
    expect(tree.merge).toEqual({
      tool: "gyoza",
      summary: "gyoza: final = weighted_sum(a: texture, b: composition, alpha COSINE)",
      step: "final",
      method: "weighted_sum",
      weights: { alpha: "COSINE" },
    });
    expect(tree.parents[1]!.merge).toEqual({
      tool: "gyoza",
      summary:
        "gyoza: composition = weighted_sum(a: anime_detail, b: composition_model, alpha REVERSE_COSINE)",
      step: "composition",
      method: "weighted_sum",
      weights: { alpha: "REVERSE_COSINE" },
    });
    expect(tree.parents[1]!.hashes).toEqual({});
    const texture = await hashFile(file("models/texture-tuned.safetensors"), {
      algorithms: ["sha256"],
      cacheDir,
    });
    expect(tree.parents[0]!.hashes.sha256).toBe(texture.sha256!.toLowerCase());
    const detail = tree.parents[1]!.parents[0]!;
    expect(detail.hashes.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("shows the same tree for a GyozaMix found under --search as the parent of a later merge", async () => {
    const gyozamix = await gyozaMix();
    await writeSyntheticCheckpoint(file("realistic.safetensors"), { ...micro, seed: 55 });
    await runRecipe(
      recipeFromData({
        gyoza: 1,
        inputs: { mix: { path: gyozamix }, real: { path: file("realistic.safetensors") } },
        steps: { blend: { method: "weighted_sum", inputs: { a: "mix", b: "real" }, alpha: 0.3 } },
        output: { path: file("blend.safetensors"), metadata: "full" },
      }),
      { kernel, hashCacheDir: cacheDir },
    );
    // without the file at hand, only its A1111-style record: says it holds the last step only
    const recorded = await readLineage(file("blend.safetensors"), { hashCacheDir: cacheDir });
    expect(recorded.parents[0]!.merge?.summary).toBe(
      "gyoza: weighted_sum × COSINE (last step only: every step is in that file's own gyoza_recipe)",
    );
    expect(recorded.parents[0]!.parents.map((parent) => parent.role)).toEqual([
      "input 1",
      "input 2",
      "input 3",
    ]);
    const found = await readLineage(file("blend.safetensors"), {
      searchDirs: [dir],
      hashCacheDir: cacheDir,
    });
    expect(shape(found.parents[0]!)).toEqual({ ...gyozaMixTree, role: "mix" });
    expect(found.parents[0]!.found?.[0]?.path).toBe(gyozamix);
    expect(found.parents[0]!.parents[1]!.merge?.weights).toEqual({ alpha: "REVERSE_COSINE" });
  });
});

describe("lineage of hostile gyoza recipes", () => {
  const recipe = (steps: Record<string, unknown>, output: string) => ({
    gyoza_recipe: JSON.stringify({
      gyoza: 1,
      inputs: { m: { path: "m.safetensors" } },
      steps,
      output: { step: output },
    }),
  });
  const count = (node: LineageNode): number => 1 + node.parents.reduce((sum, p) => sum + count(p), 0);

  it("stops at steps that name each other (a cycle) and never follows inherited names such as __proto__", () => {
    const tree = lineageFromMetadata(
      { name: "x.safetensors", hashes: {} },
      recipe(
        {
          x: { method: "weighted_sum", inputs: { a: "y", b: "__proto__" } },
          y: { method: "weighted_sum", inputs: { a: "x", b: "m" } },
        },
        "x",
      ),
    );
    expect(shape(tree)).toEqual({
      name: "x.safetensors",
      merge: "gyoza",
      parents: [
        {
          name: null,
          role: "y",
          step: "y",
          merge: "gyoza",
          parents: [
            { name: null, role: "x", step: "x", cut: "cycle", parents: [] },
            { name: "m.safetensors", role: "m", parents: [] },
          ],
        },
        { name: null, role: "__proto__", parents: [] },
      ],
    });
  });

  it("cuts a recipe whose steps each use the previous one twice at the node limit instead of drawing 2^40 nodes", () => {
    const steps: Record<string, unknown> = { s0: { method: "weighted_sum", inputs: { a: "m", b: "m" } } };
    for (let i = 1; i <= 40; i++)
      steps[`s${i}`] = { method: "weighted_sum", inputs: { a: `s${i - 1}`, b: `s${i - 1}` } };
    const tree = lineageFromMetadata({ name: "deep.safetensors", hashes: {} }, recipe(steps, "s40"));
    expect(count(tree)).toBeLessThanOrEqual(MAX_LINEAGE_NODES + 2);
    const cuts = new Set<string>();
    const walk = (node: LineageNode): void => {
      if (node.cut) cuts.add(node.cut);
      node.parents.forEach(walk);
    };
    walk(tree);
    expect(cuts.has("size")).toBe(true);
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
