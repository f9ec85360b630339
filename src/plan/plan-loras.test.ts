import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildLoraFile, type LoraModuleSpec } from "../arch/lora/test-support/build-lora.js";
import { modulesFitting } from "../arch/lora/test-support/fit-lora.js";
import { GyozaError } from "../errors.js";
import { recipeFromData } from "../recipe/index.js";
import { type SyntheticOptions, syntheticTensors } from "../synth/synthetic-model.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { buildValidSafetensors } from "../test-support/build-safetensors.js";
import { runCli } from "../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { formatPlan } from "./format-plan.js";
import type { MergePlan, PlanOp } from "./merge-plan.js";
import { planRecipe } from "./plan-recipe.js";

let dir: string;
useTempDirWithHashCache("gyoza-plan-loras-", (path) => {
  dir = path;
});

const SD1: SyntheticOptions = { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: 1 };
const SDXL: SyntheticOptions = { layout: "sdxl-sgm", size: "micro", dtype: "F16", seed: 2 };
const model = (options: SyntheticOptions) => new Map(syntheticTensors(options).map((t) => [t.key, t]));
const U = "model.diffusion_model.";
const TO_OUT = `${U}output_blocks.11.1.transformer_blocks.0.attn2.to_out.0.weight`;
const TE_Q = "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight";
const SD1_NAMES = [
  "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", // IN01
  "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj", // M00
  "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0", // OUT11
  "lora_te_text_model_encoder_layers_0_self_attn_q_proj", // BASE
  "lora_unet_time_embedding_linear_1", // outside every block
];

async function writeLora(name: string, modules: readonly LoraModuleSpec[], seed = 1): Promise<void> {
  await writeFile(join(dir, name), buildLoraFile(modules, { seed }));
}

beforeAll(async () => {
  await writeSyntheticCheckpoint(join(dir, "sd1.safetensors"), SD1);
  await writeSyntheticCheckpoint(join(dir, "sdxl.safetensors"), SDXL);
  await writeLora("detail.safetensors", modulesFitting(SD1_NAMES, model(SD1), "sd1", { alpha: 2 }));
  await writeLora(
    "no-alpha.safetensors",
    modulesFitting(SD1_NAMES.slice(2, 4), model(SD1), "sd1", { rank: 8, alpha: null }),
    2,
  );
  await writeLora(
    "xl.safetensors",
    modulesFitting(["lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"], model(SDXL), "sdxl"),
  );
  const [toQ] = modulesFitting(SD1_NAMES.slice(0, 1), model(SD1), "sd1");
  await writeLora("rank-mismatch.safetensors", [{ ...toQ!, upShape: [toQ!.out, 3] }]);
  // a model without the text encoder's first q_proj, and a Tucker LoCon
  const tensors = syntheticTensors(SD1).filter((t) => t.key !== TE_Q);
  const bytes = buildValidSafetensors(
    tensors.map((t) => ({ key: t.key, dtype: t.dtype, shape: t.shape, data: new Uint8Array(t.byteLength) })),
  );
  await writeFile(join(dir, "no-te-q.safetensors"), bytes);
  const conv = "lora_unet_down_blocks_0_resnets_0_conv1";
  const [locon] = modulesFitting([conv], model(SD1), "sd1");
  await writeFile(
    join(dir, "tucker.safetensors"),
    buildValidSafetensors([
      {
        key: `${conv}.lora_down.weight`,
        dtype: "F16",
        shape: [4, locon!.in, 1, 1],
        data: new Uint8Array(8 * locon!.in),
      },
      { key: `${conv}.lora_mid.weight`, dtype: "F16", shape: [4, 4, 3, 3], data: new Uint8Array(288) },
      {
        key: `${conv}.lora_up.weight`,
        dtype: "F16",
        shape: [locon!.out, 4, 1, 1],
        data: new Uint8Array(8 * locon!.out),
      },
    ]),
  );
}, 60_000);

function bakeRecipe(loras: { file: string; ratio: number; weights?: string }[], base = "sd1.safetensors") {
  const inputs: Record<string, { path: string }> = { mix: { path: base } };
  loras.forEach((lora, i) => {
    inputs[`lora${i + 1}`] = { path: lora.file };
  });
  return recipeFromData({
    gyoza: 1,
    inputs,
    steps: {
      tuned: {
        method: "add_lora",
        inputs: { a: "mix" },
        loras: loras.map((lora, i) => ({
          input: `lora${i + 1}`,
          ratio: lora.ratio,
          ...(lora.weights ? { weights: lora.weights } : {}),
        })),
      },
    },
    output: { path: "out.safetensors" },
  });
}

async function plan(...args: Parameters<typeof bakeRecipe>): Promise<MergePlan> {
  const planned = await planRecipe(bakeRecipe(...args), { baseDir: dir });
  await planned.close();
  return planned.plan;
}

async function refusal(...args: Parameters<typeof bakeRecipe>): Promise<GyozaError> {
  const error = await plan(...args).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GyozaError);
  expect(existsSync(join(dir, "out.safetensors"))).toBe(false);
  return error as GyozaError;
}

const opOf = (p: MergePlan, key: string): PlanOp => p.keys.find((k) => k.key === key)!.op;

describe("planning add_lora", () => {
  it("gives each key a LoRA changes an add-lora op with its up/down reads and numbers, and copies the rest", async () => {
    const p = await plan([{ file: "detail.safetensors", ratio: 0.6 }]);
    const op = opOf(p, TO_OUT);
    expect(op).toMatchObject({
      op: "add-lora",
      step: "tuned",
      slot: "OUT11",
      args: [{ op: "read", source: "mix", key: TO_OUT }],
      terms: [
        {
          source: "lora1",
          module: "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0",
          up: { op: "read", source: "lora1" },
          down: { op: "read", source: "lora1" },
          rank: 4,
          rows: null,
          ratio: 0.6,
          blockWeight: 1,
          alpha: 2,
          scale: 0.5,
          multiplier: 0.3,
        },
      ],
    });
    expect(p.keys.filter((k) => k.op.op === "add-lora")).toHaveLength(5);
    expect(p.sources.lora1).toBe(join(dir, "detail.safetensors"));
    expect(p.warnings).toEqual([]);
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });

  it("applies block weights per slot, leaves keys at weight 0 as they are, and gives time_embed the ratio alone", async () => {
    // 17 values: BASE, IN01, IN02, IN04, IN05, IN07, IN08, M00, OUT03 … OUT11
    const p = await plan([
      { file: "detail.safetensors", ratio: 0.5, weights: "0.2,0,1,1,1,1,1,0.5,1,1,1,1,1,1,1,1,2" },
    ]);
    const multiplier = (key: string) =>
      (opOf(p, key) as unknown as { terms: { multiplier: number }[] }).terms[0]!.multiplier;
    expect(opOf(p, `${U}input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight`).op).toBe("read");
    expect(multiplier(TO_OUT)).toBeCloseTo(0.5 * 2 * 0.5);
    expect(multiplier(TE_Q)).toBeCloseTo(0.5 * 0.2 * 0.5);
    expect(multiplier(`${U}middle_block.1.transformer_blocks.0.ff.net.0.proj.weight`)).toBeCloseTo(
      0.5 * 0.5 * 0.5,
    );
    expect(multiplier(`${U}time_embed.0.weight`)).toBeCloseTo(0.5 * 0.5);
    expect(p.loras[0]!.slots).toContainEqual({ slot: "IN01", weight: 0, modules: 1 });
    expect(p.loras[0]!.slots).toContainEqual({ slot: null, weight: 0.5, modules: 1 });
  });

  it("adds two LoRAs on one key as two terms in recipe order", async () => {
    const p = await plan([
      { file: "detail.safetensors", ratio: 0.6 },
      { file: "no-alpha.safetensors", ratio: -0.3 },
    ]);
    const terms = (opOf(p, TO_OUT) as unknown as { terms: { source: string; multiplier: number }[] }).terms;
    expect(terms.map((t) => [t.source, t.multiplier])).toEqual([
      ["lora1", 0.6 * 1 * 0.5],
      ["lora2", -0.3 * 1 * 1],
    ]);
  });

  it("warns, but plans, a LoRA whose modules have no alpha: taken as the rank (scale 1)", async () => {
    const p = await plan([{ file: "no-alpha.safetensors", ratio: 1 }]);
    expect(p.warnings).toEqual([
      {
        code: "lora-alpha-missing",
        message:
          'LoRA "lora1" (tuned): 2 of 2 modules have no alpha; taken as their rank (scale 1), as kohya does',
      },
    ]);
    expect((opOf(p, TE_Q) as unknown as { terms: { scale: number; rank: number }[] }).terms[0]).toMatchObject(
      {
        scale: 1,
        rank: 8,
      },
    );
  });

  it("refuses a LoRA for SDXL on an SD 1.x model before anything is written", async () => {
    const error = await refusal([{ file: "xl.safetensors", ratio: 1 }]);
    expect(error.code).toBe("architecture-mismatch");
    expect(error.path).toBe("steps.tuned.loras[0]");
    expect(error.describe()).toContain(
      "a LoRA for Stable Diffusion XL cannot change a Stable Diffusion 1.x model",
    );
  });

  it("refuses a LoRA whose up and down disagree on the rank, naming the module", async () => {
    const error = await refusal([{ file: "rank-mismatch.safetensors", ratio: 1 }]);
    expect(error.describe()).toContain("has rank 3 but down");
    expect(error.describe()).toContain(
      "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
    );
  });

  it("refuses a LoRA module for a key the model lacks", async () => {
    const error = await refusal([{ file: "detail.safetensors", ratio: 1 }], "no-te-q.safetensors");
    expect(error.code).toBe("architecture-mismatch");
    expect(error.describe()).toContain(`changes ${TE_Q}, which the model does not have`);
  });

  it("refuses a LoCon module with a Tucker core, which it cannot bake yet", async () => {
    const error = await refusal([{ file: "tucker.safetensors", ratio: 1 }]);
    expect(error.describe()).toContain("Tucker core (lora_mid): baking it is not supported yet");
  });

  it("refuses 17 block weights (SD 1.x blocks) for an SDXL model", async () => {
    const error = await refusal(
      [{ file: "xl.safetensors", ratio: 1, weights: "OUTALL" }],
      "sdxl.safetensors",
    );
    expect(error.path).toBe("steps.tuned.loras[0].weights");
    expect(error.describe()).toContain("give 12 or 20 values");
  });

  it("shows each LoRA, its ratio and block weights per slot, and the warnings in the plan's text", async () => {
    const text = formatPlan(
      await plan([
        { file: "detail.safetensors", ratio: 0.6, weights: "OUTALL" },
        { file: "no-alpha.safetensors", ratio: 0.3 },
      ]),
    );
    expect(text).toContain("tuned = add_lora(mix) + lora1 ×0.6 [OUTALL] + lora2 ×0.3");
    expect(text).toContain("tuned + lora1: sd1, 5 modules, rank 4; ratio 0.6, weights OUTALL");
    expect(text).toContain("BASE 0.6×1  IN01 0×1  M00 0×1  OUT11 0.6×1  other 0.6×1");
    expect(text).toContain("tuned + lora2: sd1, 2 modules, rank 8, 2 without alpha; ratio 0.3, weights ALL");
    expect(text).toContain('warning: LoRA "lora2" (tuned): 2 of 2 modules have no alpha');
  });
});

describe("gyoza merge MODEL --lora", () => {
  it("bakes a LoRA into one model, and prints the plan with --plan", async () => {
    const out = join(dir, "cli-out.safetensors");
    const planned = await runCli(
      "merge",
      join(dir, "sd1.safetensors"),
      "--lora",
      `${join(dir, "detail.safetensors")}:0.6:OUTALL`,
      "-o",
      out,
      "--plan",
    );
    expect(planned.code).toBe(0);
    expect(planned.stdout).toContain("loras = add_lora(a) + detail ×0.6 [OUTALL]");
    expect(existsSync(out)).toBe(false);
    const run = await runCli(
      "merge",
      join(dir, "sd1.safetensors"),
      "--lora",
      `${join(dir, "no-alpha.safetensors")}:0.5`,
      "-o",
      out,
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("(2 merged,");
    expect(run.stdout).toContain("baked LoRA no-alpha ×0.5: 2 modules (step loras)");
    expect(run.stdout).toContain('warning: LoRA "no-alpha" (loras): 2 of 2 modules have no alpha');
  });

  it("exits 2 for a ratio that is not a number and for --lora with a recipe file", async () => {
    const bad = await runCli(
      "merge",
      join(dir, "sd1.safetensors"),
      "--lora",
      "detail.safetensors:x",
      "-o",
      join(dir, "o.safetensors"),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('the ratio "x" of detail.safetensors:x is not a number');
    await writeFile(join(dir, "r.yaml"), "gyoza: 1\n");
    const withRecipe = await runCli("merge", join(dir, "r.yaml"), "--lora", "detail.safetensors:1");
    expect(withRecipe.code).toBe(2);
    expect(withRecipe.stderr).toContain("--lora only apply to the one-step form");
  });

  it("exits 1, writing nothing, for a LoRA for SDXL on an SD 1.x model", async () => {
    const out = join(dir, "xl-on-sd1.safetensors");
    const run = await runCli(
      "merge",
      join(dir, "sd1.safetensors"),
      "--lora",
      `${join(dir, "xl.safetensors")}:1`,
      "-o",
      out,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("a LoRA for Stable Diffusion XL cannot change a Stable Diffusion 1.x model");
    expect(existsSync(out)).toBe(false);
  });
});
