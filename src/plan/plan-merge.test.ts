import { readdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { runCli } from "../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { type MergePlan, opsOf } from "./merge-plan.js";
import { planRecipe } from "./plan-recipe.js";

let dir: string;
useTempDirWithHashCache("gyoza-plan-", (path) => {
  dir = path;
});

const micro = { layout: "sd1-ldm", size: "micro", dtype: "F16" } as const;

beforeAll(async () => {
  await mkdir(join(dir, "models"));
  for (const [name, seed] of [
    ["anime", 1],
    ["comp", 2],
    ["texture", 3],
    ["vae", 4],
  ] as const)
    await writeSyntheticCheckpoint(join(dir, "models", `${name}.safetensors`), {
      ...micro,
      seed,
      ...(name === "vae" ? { vaeOnly: true } : {}),
    });
});

function gyozamix(output: Record<string, unknown> = {}) {
  return recipeFromData({
    gyoza: 1,
    inputs: {
      anime: { path: "models/anime.safetensors" },
      comp: { path: "models/comp.safetensors" },
      texture: { path: "models/texture.safetensors" },
    },
    steps: {
      composition: { method: "weighted_sum", inputs: { a: "anime", b: "comp" }, alpha: "REVERSE_COSINE" },
      final: { method: "weighted_sum", inputs: { a: "texture", b: "composition" }, alpha: "COSINE" },
    },
    output: { step: "final", path: "out.safetensors", ...output },
  });
}

async function plan(recipe = gyozamix()): Promise<MergePlan> {
  const planned = await planRecipe(recipe, { baseDir: dir });
  await planned.close();
  return planned.plan;
}

describe("planMerge", () => {
  it("fuses GyozaMix's two weighted sums into one nested op, as weighted_sum declares, and keeps the texture model's VAE", async () => {
    const { keys, finishing } = await plan();
    const unet = keys.find((k) => k.key === "model.diffusion_model.input_blocks.1.0.in_layers.0.weight")!;
    expect(unet.op).toMatchObject({
      op: "nested-weighted-sum",
      step: "final",
      innerStep: "composition",
      slot: "IN01",
      innerFirst: false,
      args: [
        { op: "read", source: "anime" },
        { op: "read", source: "comp" },
        { op: "read", source: "texture" },
      ],
    });
    const vae = keys.find((k) => k.key.startsWith("first_stage_model."))!;
    expect(vae.op).toMatchObject({ op: "read", source: "texture" });
    expect(finishing.vae).toMatchObject({ policy: "keep", from: "texture" });
    const ids = keys.find((k) => k.key.endsWith("position_ids"))!;
    expect(ids).toMatchObject({ dtype: "I64", shape: [1, 77], op: { op: "arange" } });
  });

  it("gives equal, frozen, JSON-serialisable plans for the same recipe and inputs", async () => {
    const first = await plan();
    const second = await plan();
    expect(second).toEqual(first);
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
    expect(JSON.parse(JSON.stringify(first))).toEqual(first);
    expect(Object.isFrozen(first.keys[5]!.op)).toBe(true);
    expect(() => {
      (first.keys as unknown as unknown[]).push({});
    }).toThrow();
  });

  it("bakes a VAE file as its own source and prunes what the layout lacks", async () => {
    const { keys, finishing, sources } = await plan(
      gyozamix({ vae: { policy: "bake", file: "models/vae.safetensors" }, prune: true }),
    );
    expect(sources["@vae"]).toBe(join(dir, "models", "vae.safetensors"));
    const vae = keys.filter((k) => k.key.startsWith("first_stage_model."));
    expect(vae.length).toBeGreaterThan(0);
    for (const planned of vae) expect(planned.op).toMatchObject({ op: "read", source: "@vae" });
    expect(finishing.vae.policy).toBe("bake");
  });

  it("runs other methods as their own function, with their resolved parameters", async () => {
    const recipe = recipeFromData({
      gyoza: 1,
      inputs: { a: { path: "models/anime.safetensors" }, b: { path: "models/comp.safetensors" } },
      steps: { s: { method: "slerp", inputs: { a: "a", b: "b" }, alpha: 0.25 } },
      output: { path: "out.safetensors" },
    });
    const ops = (await plan(recipe)).keys.flatMap((k) => [...opsOf(k.op)]);
    expect(ops.some((op) => op.op === "method" && op.method === "slerp" && op.params.alpha === 0.25)).toBe(
      true,
    );
    expect(ops.some((op) => op.op === "weighted-sum")).toBe(false);
  });
});

describe("gyoza merge --plan", () => {
  it("prints every step's weight per slot without writing anything, and --json prints the plan", async () => {
    const home = process.cwd();
    process.chdir(dir);
    try {
      const args = [
        "merge",
        "models/anime.safetensors",
        "models/comp.safetensors",
        "--alpha",
        "COSINE",
        "--base",
        "0.3",
        "-o",
        "never.safetensors",
        "--plan",
      ];
      const text = await runCli(...args);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toContain("merge.alpha: BASE 0.3×");
      expect(text.stdout).toContain("IN00 1×");
      expect(text.stdout).toContain("OUT11 0×");
      const json = await runCli(...args, "--json");
      expect(JSON.parse(json.stdout).schema).toBe("gyoza.plan/1");
      expect(readdirSync(dir)).not.toContain("never.safetensors");
    } finally {
      process.chdir(home);
    }
  });
});

describe("the stream runs ops, not methods", () => {
  it("has no method-id dispatch left in src/stream or src/engine", () => {
    for (const folder of ["../stream", "../engine"]) {
      const url = new URL(`${folder}/`, import.meta.url);
      for (const file of readdirSync(url).filter(
        (name) => name.endsWith(".ts") && !name.endsWith(".test.ts"),
      )) {
        const text = readFileSync(new URL(file, url), "utf8");
        expect(text, `${folder}/${file}`).not.toMatch(/method\.id\s*===|\.method\.id\b/);
      }
    }
  });
});
