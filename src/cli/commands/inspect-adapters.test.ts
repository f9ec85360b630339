import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  buildLoraFile,
  SD1_KOHYA_MODULES,
  SDXL_KOHYA_MODULES,
} from "../../arch/lora/test-support/build-lora.js";
import { openCheckpoint } from "../../io/open-checkpoint.js";
import { readTensorBytes } from "../../io/read-tensor.js";
import { FIXTURE_DIRS } from "../../test-support/fixture-dirs.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache("gyoza-cli-inspect-adapters-", (path) => {
  dir = path;
});

const AURORANEG = `${FIXTURE_DIRS.ckpt}ti_embedding_auroraneg.pt`;
const TRAINING = {
  ss_output_name: "gyoza_style",
  ss_network_module: "networks.lora",
  ss_network_dim: "4",
  ss_network_alpha: "2",
  ss_base_model_version: "sd_v1",
  ss_sd_model_name: "animefull-final-pruned.ckpt",
  ss_training_comment: "trigger: gyozastyle",
  ss_epoch: "10",
  ss_num_train_images: "300",
  ss_tag_frequency: JSON.stringify({ "10_gyoza": { "1girl": 120, gyozastyle: 150 } }),
  ss_seed: "42",
  ss_max_grad_norm: "1.0",
};
const paths: Record<string, string> = {};

beforeAll(async () => {
  paths.sd1 = join(dir, "gyoza_style.safetensors");
  await writeFile(paths.sd1, buildLoraFile(SD1_KOHYA_MODULES, { metadata: TRAINING }));
  paths.sdxl = join(dir, "xl_style.safetensors");
  await writeFile(paths.sdxl, buildLoraFile(SDXL_KOHYA_MODULES));
});

describe("gyoza inspect on a LoRA", () => {
  it("shows format, base model with evidence, rank, alpha, targets per block and the training record", async () => {
    const { code, stdout } = await runCli("inspect", paths.sd1!);
    expect(code).toBe(0);
    const lines = stdout.split("\n");
    for (const line of [
      "  lora          kohya LoRA (kohya key names, diffusers UNet names), 7 modules: unet 5, text encoder 2 (1 convolution)",
      "    base model  Stable Diffusion 1.x [sd1], by module shapes",
      "    rank        4 (all modules)",
      "    alpha       2 (all modules), scale 0.5",
      "    targets     IN01 3, M00 1, OUT11 1, text encoder 2",
      "  training      output name gyoza_style",
      "                network networks.lora, dim 4, alpha 2",
      "                base sd_v1 trained on animefull-final-pruned.ckpt",
      "                epoch 10, 300 images",
      "                comment: trigger: gyozastyle",
      "                tags (1 folder, 2 distinct): gyozastyle 150, 1girl 120",
      "                1 more ss_* key (--json shows them in metadata)",
    ])
      expect(lines).toContain(line);
    expect(stdout).toContain(
      "· lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k [320, 768]: cross-attention context dim 768",
    );
  });

  it("adds a lora field to --json, every gyoza.inspect/1 field still there", async () => {
    const { code, stdout } = await runCli("inspect", paths.sdxl!, "--json");
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({
      schema: "gyoza.inspect/1",
      architecture: { id: "lora" },
      civitai: { type: "LORA" },
    });
    expect(report.lora).toMatchObject({
      format: "kohya",
      base: { id: "sdxl" },
      modules: { total: 7, unet: 4, textEncoder: 1, textEncoder2: 2 },
      rank: { common: 4 },
      alpha: { common: 2, missing: 0 },
      targets: { mapped: 7, unmapped: 0 },
    });
    expect(report.lora.perModule).toHaveLength(7);
    expect(report.embedding).toBeUndefined();
  });

  it("warns about a missing alpha: taken as rank", async () => {
    const path = join(dir, "no-alpha.safetensors");
    await writeFile(path, buildLoraFile(SD1_KOHYA_MODULES.slice(0, 3).map((m) => ({ ...m, alpha: null }))));
    const { code, stdout } = await runCli("inspect", path);
    expect(code).toBe(0);
    expect(stdout).toContain("    alpha       4 (all modules), scale 1 (3 missing: taken as rank)");
    expect(stdout).toContain(
      "    ! alpha missing: taken as rank (scale 1, kohya's convention) for all 3 modules: lora_unet_down_blocks_0_attentions_0_proj_in,",
    );
  });
});

describe("gyoza inspect and convert on a textual-inversion embedding", () => {
  it("shows the prompt token, vectors, text encoder and training record of an A1111 .pt", async () => {
    const { code, stdout } = await runCli("inspect", AURORANEG);
    expect(code).toBe(0);
    expect(stdout).toContain(
      '  embedding     prompt token "ti_embedding_auroraneg" (the file name), 2 vectors, SD 1.x (CLIP-L 768), A1111 .pt layout',
    );
    expect(stdout).toContain('                trained as "auroraneg", step 500, on x [abcd1234]');
    const json = JSON.parse((await runCli("inspect", AURORANEG, "--json")).stdout);
    expect(json.embedding).toMatchObject({ token: "ti_embedding_auroraneg", vectors: 2, base: "sd1" });
    expect(json.lora).toBeUndefined();
  });

  it("converts the .pt to A1111's safetensors layout: emb_params, the same bytes, textual-inversion modelspec", async () => {
    const output = join(dir, "AuroraNegative.safetensors");
    const { code, stderr } = await runCli("convert", AURORANEG, output);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const expected = JSON.parse(await readFile(`${AURORANEG}.expected.json`, "utf8")).tensors[
      "string_to_param.*"
    ];
    const converted = await openCheckpoint(output);
    try {
      expect([...converted.tensors.keys()]).toEqual(["emb_params"]);
      const tensor = converted.tensors.get("emb_params")!;
      expect(tensor).toMatchObject({ dtype: "F32", shape: [2, 768] });
      const sha256 = createHash("sha256")
        .update(await readTensorBytes(tensor))
        .digest("hex");
      expect(sha256).toBe(expected.sha256_contiguous);
      expect(converted.metadata).toMatchObject({
        "modelspec.architecture": "stable-diffusion-v1/textual-inversion",
        "modelspec.title": "AuroraNegative",
        name: "auroraneg",
        step: "500",
        sd_checkpoint: "abcd1234",
        sd_checkpoint_name: "x",
      });
    } finally {
      await converted.close();
    }
    const { stdout } = await runCli("inspect", output);
    expect(stdout).toContain(
      'prompt token "AuroraNegative" (the file name), 2 vectors, SD 1.x (CLIP-L 768), emb_params safetensors layout',
    );
    expect(stdout).toContain('trained as "auroraneg", step 500, on x [abcd1234]');
  });
});
