import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../../io/open-checkpoint.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache("gyoza-cli-merge-", (path) => {
  dir = path;
});

const micro = { layout: "sd1-ldm", size: "micro", dtype: "F16" } as const;
const COSINE_25 =
  "1,0.99,0.96,0.92,0.85,0.78,0.69,0.6,0.5,0.4,0.31,0.22,0.15,0.08,0.04,0.01,0,0.01,0.04,0.08,0.15,0.22,0.31,0.4,0.5";
let a: string;
let b: string;
let c: string;

beforeAll(async () => {
  const models = join(dir, "models");
  await mkdir(models);
  a = join(models, "a.safetensors");
  b = join(models, "b.safetensors");
  c = join(models, "c.safetensors");
  await writeSyntheticCheckpoint(a, { ...micro, seed: 1 });
  await writeSyntheticCheckpoint(b, { ...micro, seed: 2, ema: true });
  await writeSyntheticCheckpoint(c, { ...micro, seed: 3, ema: true });
});

const home = process.cwd();
afterEach(() => {
  process.chdir(home);
});

async function autoV3(path: string): Promise<string> {
  const { code, stdout, stderr } = await runCli("hash", path, "--json", "--algo", "autov3");
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout)[0].autoV3;
}

async function metadataOf(path: string): Promise<Record<string, string>> {
  const checkpoint = await openCheckpoint(path);
  try {
    return { ...checkpoint.metadata };
  } finally {
    await checkpoint.close();
  }
}

describe("gyoza merge never merges something other than what was typed", () => {
  it("refuses 25 weights with a trailing comma instead of shifting every block by one, and writes nothing", async () => {
    const out = join(dir, "shifted.safetensors");
    const { code, stderr } = await runCli("merge", a, b, "--alpha", `${COSINE_25},`, "-o", out);
    expect(code).toBe(2);
    expect(stderr).toContain("--alpha: field 26 is empty (after OUT11)");
    expect(stderr).toContain("fix: remove the trailing comma");
    expect(existsSync(out)).toBe(false);
  });

  it("refuses space-separated weights with a hint to use commas", async () => {
    const { code, stderr } = await runCli(
      "merge",
      a,
      b,
      "--alpha",
      "1 0.5 0",
      "-o",
      join(dir, "x.safetensors"),
    );
    expect(code).toBe(2);
    expect(stderr).toContain('separate block weights with commas: "1,0.5,0"');
  });

  it("reads alpha written as comma text inside a recipe like the same numbers on the command line", async () => {
    const recipe = join(dir, "text-alpha.yaml");
    await writeFile(
      recipe,
      `gyoza: 1\ninputs: {a: {path: models/a.safetensors}, b: {path: models/b.safetensors}}\nsteps:\n  m: {method: weighted_sum, inputs: {a: a, b: b}, alpha: "${COSINE_25}"}\noutput: {path: from-text.safetensors, metadata: none}\n`,
    );
    expect((await runCli("merge", recipe)).code).toBe(0);
    const cli = join(dir, "from-cli.safetensors");
    expect((await runCli("merge", a, b, "--alpha", COSINE_25, "-o", cli, "--metadata", "none")).code).toBe(0);
    expect(await autoV3(join(dir, "from-text.safetensors"))).toBe(await autoV3(cli));
  });

  it("refuses weights outside 0..1 unless extrapolation is allowed, naming the slots", async () => {
    const out = join(dir, "extrapolated.safetensors");
    let run = await runCli("merge", a, b, "--alpha", "0.3", "--base", "1.7", "-o", out);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("alpha is outside 0..1 at BASE 1.7");
    expect(run.stderr).toContain("--allow-extrapolation");
    run = await runCli("merge", a, b, "--alpha", "-0.5", "-o", out);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("IN00 -0.5");
    expect(existsSync(out)).toBe(false);
    run = await runCli("merge", a, b, "--alpha", "0.3", "--base", "1.7", "--allow-extrapolation", "-o", out);
    expect(run.code, run.stderr).toBe(0);
    const recipe = JSON.parse((await metadataOf(out)).gyoza_recipe!);
    expect(recipe.steps.merge.extrapolate).toBe(true);
  });

  it("says in the summary that keys only later inputs had were pruned, not copied (add_difference)", async () => {
    const out = join(dir, "add-difference.safetensors");
    const { code, stdout, stderr } = await runCli(
      "merge",
      a,
      b,
      c,
      "--method",
      "add_difference",
      "--alpha",
      "0.5",
      "-o",
      out,
    );
    expect(code, stderr).toBe(0);
    expect(stdout).not.toContain("only in a later input");
    expect(stdout).toMatch(/pruned \d+ tensors/);
    const keys = [...(await openCheckpoint(out)).tensors.keys()];
    expect(keys.some((key) => key.startsWith("model_ema."))).toBe(false);
  });

  it("states the output precision and pruning, and --no-prune keeps what pruning drops", async () => {
    const out = join(dir, "unpruned.safetensors");
    const { code, stdout, stderr } = await runCli(
      "merge",
      b,
      c,
      "--alpha",
      "0.5",
      "--no-prune",
      "--dtype",
      "fp32",
      "-o",
      out,
    );
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(", fp32, kernel");
    expect(stdout).toContain("not pruned (--no-prune)");
    const checkpoint = await openCheckpoint(out);
    expect([...checkpoint.tensors.keys()].some((key) => key.startsWith("model_ema."))).toBe(true);
    expect(checkpoint.tensors.get("model.diffusion_model.out.2.weight")?.dtype).toBe("F32");
    await checkpoint.close();
    const help = await runCli("merge", "--help");
    expect(help.stdout).toContain('(default: "fp16")');
    expect(help.stdout).toContain("--no-prune");
  });
});

describe("gyoza merge with a recipe file and output flags", () => {
  async function writeRecipe(name: string, output: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(
      path,
      `gyoza: 1\ninputs:\n  a: {path: models/a.safetensors}\n  b: {path: models/b.safetensors}\nsteps:\n  m: {method: weighted_sum, inputs: {a: a, b: b}, alpha: COSINE}\noutput: {path: ${output}, dtype: fp16}\n`,
    );
    return path;
  }

  it("writes where -o says, in the --dtype asked for, and records the override in the output's metadata", async () => {
    const recipe = await writeRecipe("override.yaml", "recipe-output.safetensors");
    const other = join(dir, "other.safetensors");
    const { code, stdout, stderr } = await runCli("merge", recipe, "-o", other, "--dtype", "fp32");
    expect(code, stderr).toBe(0);
    expect(existsSync(join(dir, "recipe-output.safetensors"))).toBe(false);
    expect(stdout).toContain('override: output.dtype = "fp32"');
    const checkpoint = await openCheckpoint(other);
    expect(checkpoint.tensors.get("model.diffusion_model.out.2.weight")?.dtype).toBe("F32");
    expect(JSON.parse(checkpoint.metadata.gyoza_overrides!)).toEqual({
      "output.path": "other.safetensors",
      "output.dtype": "fp32",
    });
    expect(JSON.parse(checkpoint.metadata.gyoza_recipe!).output.dtype).toBe("fp32");
    await checkpoint.close();
  });

  it("refuses step flags such as --alpha with a recipe instead of ignoring them", async () => {
    const recipe = await writeRecipe("refuse.yaml", "never.safetensors");
    const { code, stderr } = await runCli("merge", recipe, "--alpha", "0.2", "--method", "add_difference");
    expect(code).toBe(2);
    expect(stderr).toContain("--method, --alpha only apply to the one-step form");
    expect(existsSync(join(dir, "never.safetensors"))).toBe(false);
  });
});

describe("saved recipes run from any folder", () => {
  it("--save-recipe writes paths relative to the recipe, so it gives the same AutoV3 run from elsewhere", async () => {
    process.chdir(dir);
    const saved = await runCli(
      "merge",
      "models/a.safetensors",
      "models/b.safetensors",
      "--alpha",
      "COSINE",
      "-o",
      "saved-merge.safetensors",
      "--save-recipe",
      "recipes/saved.yaml",
      "--mkdir",
    );
    expect(saved.code, saved.stderr).toBe(0);
    const text = await readFile(join(dir, "recipes/saved.yaml"), "utf8");
    expect(text).toContain("path: ../models/a.safetensors");
    const elsewhere = join(dir, "elsewhere");
    await mkdir(elsewhere);
    process.chdir(elsewhere);
    const rerun = await runCli("merge", "../recipes/saved.yaml", "-o", "rerun.safetensors");
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(await autoV3(join(elsewhere, "rerun.safetensors"))).toBe(
      await autoV3(join(dir, "saved-merge.safetensors")),
    );
  });

  it("recipe from -o and recover --recipe write recipes that run from another folder", async () => {
    process.chdir(dir);
    expect(
      (
        await runCli(
          "merge",
          "models/a.safetensors",
          "models/b.safetensors",
          "--alpha",
          "0.3",
          "-o",
          "m.safetensors",
        )
      ).code,
    ).toBe(0);
    const imported = await runCli(
      "recipe",
      "from",
      "m.safetensors",
      "--search",
      "models",
      "-o",
      "recipes/imported.yaml",
    );
    expect(imported.code, imported.stderr).toBe(0);
    const recovered = await runCli(
      "recover",
      "m.safetensors",
      "--from",
      "models/a.safetensors",
      "models/b.safetensors",
      "--recipe",
      "recipes/recovered.yaml",
    );
    expect(recovered.code, recovered.stderr).toBe(0);
    process.chdir(join(dir, "elsewhere"));
    for (const recipe of ["imported", "recovered"]) {
      const run = await runCli("merge", `../recipes/${recipe}.yaml`, "-o", `${recipe}.safetensors`);
      expect(run.code, `${recipe}: ${run.stderr}`).toBe(0);
    }
    expect(await autoV3("imported.safetensors")).toBe(await autoV3(join(dir, "m.safetensors")));
  });
});

describe("gyoza merge checks its output folder before any work", () => {
  it("names a missing output folder and creates it with --mkdir", async () => {
    const out = join(dir, "not-yet", "deeper", "out.safetensors");
    let run = await runCli("merge", a, b, "-o", out);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`output folder ${join(dir, "not-yet", "deeper")} does not exist`);
    expect(run.stderr).toContain("--mkdir");
    expect(run.stderr).not.toContain("no such file");
    run = await runCli("merge", a, b, "-o", out, "--mkdir");
    expect(run.code, run.stderr).toBe(0);
    expect(await readdir(join(dir, "not-yet", "deeper"))).toEqual(["out.safetensors"]);
  });
});
