import { constants, readFileSync } from "node:fs";
import { mkdtemp, open, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { DIRECT_BLOCK_BYTES } from "../io/direct-appender.js";
import { f16ToF32Table, f32BitsToF16Bits } from "../io/float-convert.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { readTensorBytes } from "../io/read-tensor.js";
import type { Checkpoint } from "../io/tensor.js";
import { createJsKernel, loadKernel } from "../kernels/index.js";
import { recipeFromData } from "../recipe/index.js";
import { MERGE_CHUNK_ELEMENTS } from "../stream/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { FIXTURE_DIRS } from "../test-support/fixture-dirs.js";
import { runRecipe } from "./run-recipe.js";

/**
 * The engine against an independent reference computed here from DOMAIN.md §3: the classic
 * key → slot rule written out as regular expressions, preset values read from the reference table
 * (test/fixtures/reference), and the fp32 / lerp formulas as plain Math.fround arithmetic.
 */
const PRESETS_25 = JSON.parse(
  readFileSync(`${FIXTURE_DIRS.reference}presets/mbw-presets-sd1-25.json`, "utf8"),
) as Record<string, number[]>;
const SLOTS = [
  ...Array.from({ length: 12 }, (_, i) => `IN${String(i).padStart(2, "0")}`),
  "M00",
  ...Array.from({ length: 12 }, (_, i) => `OUT${String(i).padStart(2, "0")}`),
];

function classicSlot(key: string): string | null {
  if (!/\.(weight|bias)$/.test(key)) return null;
  if (!key.startsWith("model.diffusion_model.")) return "BASE";
  if (key.includes("time_embed")) return "IN00";
  if (key.includes(".out.")) return "OUT11";
  const input = /\.input_blocks\.(\d+)\./.exec(key);
  if (input) return `IN${input[1]!.padStart(2, "0")}`;
  if (key.includes(".middle_block.")) return "M00";
  const output = /\.output_blocks\.(\d+)\./.exec(key);
  if (output) return `OUT${output[1]!.padStart(2, "0")}`;
  return "BASE";
}

function presetAlpha(preset: string, base: number): (key: string) => number | null {
  return (key) => {
    const slot = classicSlot(key);
    if (slot === null) return null;
    return slot === "BASE" ? base : PRESETS_25[preset]![SLOTS.indexOf(slot)]!;
  };
}

const decodeF16 = (bytes: Uint8Array) => {
  const halves = new Uint16Array(bytes.slice().buffer);
  const values = new Array<number>(halves.length);
  const table = f16ToF32Table();
  for (let i = 0; i < halves.length; i++) values[i] = table[halves[i]!]!;
  return values;
};
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
const f32Bits = (value: number) => {
  f32Scratch[0] = value;
  return u32Scratch[0]!;
};

function referenceFp32(a: number, b: number, alpha: number): number {
  const w0 = Math.fround(1 - alpha);
  const w1 = Math.fround(alpha);
  return Math.fround(Math.fround(a * w0) + Math.fround(b * w1));
}

/**
 * torch.lerp on CPU tensors (what supermerger calls): DOMAIN.md's `a + w(b − a)` / `b − (b − a)(1 − w)`
 * as torch evaluates them, one fused multiply-add each (checked against torch 1.13). The f32 product
 * is exact in a double; the one double rounding of the sum could only matter on an exact f32 tie.
 */
function referenceLerp(a: number, b: number, alpha: number): number {
  const w = Math.fround(alpha);
  const diff = Math.fround(b - a);
  if (Math.abs(w) < 0.5) return Math.fround(w * diff + a);
  return Math.fround(Math.fround(w - 1) * diff + b);
}

/** GyozaMix's shape: b and c merged with REVERSE_COSINE (base 0.25), then a over that with COSINE (base 0.6). */
function gyozamixSteps(a: string, b: string, c: string) {
  return {
    composition: {
      method: "weighted_sum",
      inputs: { a: b, b: c },
      alpha: { preset: "REVERSE_COSINE", base: 0.25 },
    },
    final: {
      method: "weighted_sum",
      inputs: { a, b: "composition" },
      alpha: { preset: "COSINE", base: 0.6 },
    },
  };
}

let dir: string;
const models: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-engine-"));
  // micro models, and tiny ones: several 4 MiB write blocks, tensors of several merge chunks
  for (const [name, seed, size] of [
    ["a", 1, "micro"],
    ["b", 2, "micro"],
    ["c", 3, "micro"],
    ["tinyA", 11, "tiny"],
    ["tinyB", 12, "tiny"],
    ["tinyC", 13, "tiny"],
  ] as const) {
    models[name] = join(dir, `${name}.safetensors`);
    await writeSyntheticCheckpoint(models[name]!, { layout: "sd1-ldm", size, dtype: "F16", seed });
  }
  models.xl = join(dir, "xl.safetensors");
  await writeSyntheticCheckpoint(models.xl, { layout: "sdxl-sgm", size: "micro", dtype: "F16", seed: 5 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function recipe(steps: Record<string, unknown>, output: Record<string, unknown>, inputs = ["a", "b"]) {
  return recipeFromData(
    {
      gyoza: 1,
      inputs: Object.fromEntries(inputs.map((name) => [name, { path: models[name] }])),
      steps,
      output: { metadata: "none", ...output },
    },
    { sourceName: "test" },
  );
}

async function compareAll(
  out: Checkpoint,
  expected: (key: string, a: number[], b: number[], c: number[]) => number[] | "copy-a",
  names = ["a", "b", "c"],
): Promise<number> {
  const inputs = await Promise.all(names.map((name) => openCheckpoint(models[name]!)));
  let merged = 0;
  try {
    for (const [key, tensor] of out.tensors) {
      const bytes = await readTensorBytes(tensor);
      const source = inputs.map((input) => input.tensors.get(key)!);
      if (key.endsWith("position_ids")) {
        expect([...new BigInt64Array(bytes.slice().buffer)]).toEqual(
          Array.from({ length: 77 }, (_, i) => BigInt(i)),
        );
        continue;
      }
      const [a, b, c] = await Promise.all(source.map(async (t) => decodeF16(await readTensorBytes(t))));
      const want = expected(key, a!, b!, c!);
      if (want === "copy-a") {
        expect(Buffer.from(bytes).equals(Buffer.from(await readTensorBytes(source[0]!))), key).toBe(true);
        continue;
      }
      merged++;
      const wantBits = Uint16Array.from(want, (v) => f32BitsToF16Bits(f32Bits(v)));
      const got = new Uint16Array(bytes.slice().buffer);
      if (!Buffer.from(got.buffer).equals(Buffer.from(wantBits.buffer))) {
        const at = got.findIndex((bits, i) => bits !== wantBits[i]);
        expect({ key, at, bits: got[at] }).toEqual({ key, at, bits: wantBits[at] });
      }
    }
  } finally {
    await Promise.all(inputs.map((input) => input.close()));
  }
  return merged;
}

describe("executeMerge against the DOMAIN.md formulas", () => {
  it("merges with a preset and a base alpha bit for bit (fp32 mode), keeping A's VAE and arange position_ids", async () => {
    const output = join(dir, "cosine.safetensors");
    await runRecipe(
      recipe(
        { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: { preset: "COSINE", base: 0.3 } } },
        { path: output, dtype: "fp16" },
      ),
      {
        kernel: await loadKernel(),
      },
    );
    const out = await openCheckpoint(output);
    const alpha = presetAlpha("COSINE", 0.3);
    const merged = await compareAll(out, (key, a, b) => {
      const w = alpha(key);
      if (w === null || key.startsWith("first_stage_model.")) return "copy-a";
      return a.map((x, i) => referenceFp32(x, b[i]!, w));
    });
    await out.close();
    expect(merged).toBeGreaterThan(800);
  });

  it("computes outputs spanning many write blocks and merge chunks bit for bit, one step and two", async () => {
    const single = presetAlpha("COSINE", 0.3);
    const inner = presetAlpha("REVERSE_COSINE", 0.25);
    const outer = presetAlpha("COSINE", 0.6);
    const tiny = ["tinyA", "tinyB", "tinyC"];
    const cases = [
      {
        steps: {
          m: {
            method: "weighted_sum",
            inputs: { a: "tinyA", b: "tinyB" },
            alpha: { preset: "COSINE", base: 0.3 },
          },
        },
        step: "m",
        want: (key: string, a: number[], b: number[]) => {
          const w = single(key);
          return w === null ? null : a.map((x, i) => referenceFp32(x, b[i]!, w));
        },
      },
      {
        steps: gyozamixSteps("tinyA", "tinyB", "tinyC"),
        step: "final",
        want: (key: string, a: number[], b: number[], c: number[]) => {
          const [w1, w2] = [inner(key), outer(key)];
          if (w1 === null || w2 === null) return null;
          return a.map((x, i) => referenceFp32(x, referenceFp32(b[i]!, c[i]!, w1), w2));
        },
      },
      {
        // the inner sum as the outer step's first operand (GyozaMix has it second)
        steps: {
          composition: gyozamixSteps("tinyA", "tinyB", "tinyC").composition,
          final: {
            method: "weighted_sum",
            inputs: { a: "composition", b: "tinyA" },
            alpha: { preset: "COSINE", base: 0.6 },
          },
        },
        step: "final",
        // its first model is tinyB now (A's VAE and unmerged keys come from there)
        names: ["tinyB", "tinyC", "tinyA"],
        want: (key: string, b: number[], c: number[], a: number[]) => {
          const [w1, w2] = [inner(key), outer(key)];
          if (w1 === null || w2 === null) return null;
          return b.map((x, i) => referenceFp32(referenceFp32(x, c[i]!, w1), a[i]!, w2));
        },
      },
    ];
    for (const [index, { steps, step, want, names }] of cases.entries()) {
      const output = join(dir, `tiny-${index}.safetensors`);
      const result = await runRecipe(recipe(steps, { path: output, dtype: "fp16", step }, tiny), {
        kernel: await loadKernel(),
      });
      expect(result.bytes).toBeGreaterThan(3 * DIRECT_BLOCK_BYTES);
      const out = await openCheckpoint(output);
      const largest = Math.max(...[...out.tensors.values()].map((t) => t.shape.reduce((x, y) => x * y, 1)));
      expect(largest).toBeGreaterThan(2 * MERGE_CHUNK_ELEMENTS);
      const merged = await compareAll(
        out,
        (key, a, b, c) =>
          key.startsWith("first_stage_model.") ? "copy-a" : (want(key, a, b, c) ?? "copy-a"),
        names ?? tiny,
      );
      await out.close();
      expect(merged).toBeGreaterThan(800);
    }
  });

  it("reproduces supermerger's torch.lerp in lerp mode", async () => {
    const output = join(dir, "lerp.safetensors");
    await runRecipe(
      recipe(
        {
          m: {
            method: "weighted_sum",
            inputs: { a: "a", b: "b" },
            alpha: "REVERSE_COSINE",
            arithmetic: "lerp",
          },
        },
        { path: output, dtype: "fp16" },
      ),
      { kernel: await loadKernel() },
    );
    const out = await openCheckpoint(output);
    const alpha = presetAlpha("REVERSE_COSINE", 0);
    await compareAll(out, (key, a, b) => {
      const w = alpha(key);
      if (w === null || key.startsWith("first_stage_model.")) return "copy-a";
      return a.map((x, i) => referenceLerp(x, b[i]!, w));
    });
    await out.close();
  });

  it("applies an elemental override only to the keys it names inside its block", async () => {
    const output = join(dir, "elemental.safetensors");
    await runRecipe(
      recipe(
        {
          m: {
            method: "weighted_sum",
            inputs: { a: "a", b: "b" },
            alpha: 0.25,
            overrides: [{ block: "OUT04", pattern: "attn2", value: 0.9 }],
          },
        },
        { path: output, dtype: "fp16" },
      ),
      { kernel: await loadKernel() },
    );
    const out = await openCheckpoint(output);
    let overridden = 0;
    await compareAll(out, (key, a, b) => {
      const slot = classicSlot(key);
      if (slot === null || key.startsWith("first_stage_model.")) return "copy-a";
      const w = slot === "OUT04" && key.includes("attn2") ? 0.9 : 0.25;
      if (w === 0.9) overridden++;
      return a.map((x, i) => referenceFp32(x, b[i]!, w));
    });
    await out.close();
    expect(overridden).toBeGreaterThan(0);
  });

  it("evaluates a two-step recipe (add difference, then a weighted sum) in one pass", async () => {
    const output = join(dir, "two-step.safetensors");
    const steps = {
      diff: { method: "add_difference", inputs: { a: "a", b: "b", c: "c" }, alpha: 0.5 },
      final: { method: "weighted_sum", inputs: { a: "diff", b: "b" }, alpha: "COSINE" },
    };
    await runRecipe(recipe(steps, { path: output, dtype: "fp16", step: "final" }, ["a", "b", "c"]), {
      kernel: await loadKernel(),
    });
    const out = await openCheckpoint(output);
    const alpha = presetAlpha("COSINE", 0);
    await compareAll(out, (key, a, b, c) => {
      const w = alpha(key);
      if (w === null || key.startsWith("first_stage_model.")) return "copy-a";
      return a.map((x, i) => {
        const diff = Math.fround(x + Math.fround(Math.fround(0.5) * Math.fround(b[i]! - c[i]!)));
        return referenceFp32(diff, b[i]!, w);
      });
    });
    await out.close();
  });

  it("evaluates a GyozaMix-shaped recipe (a weighted sum over a weighted sum) bit for bit, in fp16 and bf16", async () => {
    const { f32BitsToBf16Bits } = await import("../io/float-convert.js");
    const inner = presetAlpha("REVERSE_COSINE", 0.25);
    const outer = presetAlpha("COSINE", 0.6);
    for (const dtype of ["fp16", "bf16"] as const) {
      const output = join(dir, `gyozamix-shape-${dtype}.safetensors`);
      const steps = gyozamixSteps("a", "b", "c");
      await runRecipe(recipe(steps, { path: output, dtype, step: "final" }, ["a", "b", "c"]), {
        kernel: await loadKernel(),
      });
      const out = await openCheckpoint(output);
      if (dtype === "fp16") {
        const merged = await compareAll(out, (key, a, b, c) => {
          const [w1, w2] = [inner(key), outer(key)];
          if (w1 === null || w2 === null || key.startsWith("first_stage_model.")) return "copy-a";
          return a.map((x, i) => referenceFp32(x, referenceFp32(b[i]!, c[i]!, w1), w2));
        });
        expect(merged).toBeGreaterThan(500);
      } else {
        // bf16: check the largest merged tensor (it spans many 16 Ki-element pieces) against the formula
        const key = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight";
        const inputs = await Promise.all(["a", "b", "c"].map((name) => openCheckpoint(models[name]!)));
        const [a, b, c] = await Promise.all(
          inputs.map(async (input) => decodeF16(await readTensorBytes(input.tensors.get(key)!))),
        );
        const want = Uint16Array.from(a!, (x, i) =>
          f32BitsToBf16Bits(f32Bits(referenceFp32(x, referenceFp32(b![i]!, c![i]!, 0.25), 0.6))),
        );
        const got = new Uint16Array((await readTensorBytes(out.tensors.get(key)!)).slice().buffer);
        expect(want.length).toBeGreaterThan(16384 * 4);
        expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        await Promise.all(inputs.map((input) => input.close()));
      }
      await out.close();
    }
  });

  it("gives byte-identical files with the native, WebAssembly and TypeScript kernels, one step and nested", async () => {
    const tiny = ["tinyA", "tinyB", "tinyC"];
    const cases = [
      {
        steps: { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: "FLAT_25" } },
        names: undefined,
      },
      // tiny models: merge chunks large enough for the wasm kernel to split them over its helper thread
      { steps: gyozamixSteps("tinyA", "tinyB", "tinyC"), names: tiny, step: "final" },
    ];
    for (const [index, { steps, names, step }] of cases.entries()) {
      const hashes = new Set<string>();
      for (const kernel of [createJsKernel(), await loadKernel("wasm"), await loadKernel("auto")]) {
        const output = join(dir, `kernel-${index}-${kernel.name}.safetensors`);
        const result = await runRecipe(recipe(steps, { path: output, dtype: "bf16", step }, names), {
          kernel,
        });
        hashes.add(result.dataSha256!);
      }
      expect(hashes.size, `case ${index}`).toBe(1);
    }
  });
});

describe("executeMerge refuses bad merges and leaves nothing behind", () => {
  it("rejects SD 1.x + SDXL before writing anything", async () => {
    const output = join(dir, "mixed.safetensors");
    const bad = recipeFromData(
      {
        gyoza: 1,
        inputs: { a: { path: models.a }, b: { path: models.xl } },
        steps: { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.5 } },
        output: { path: output },
      },
      { sourceName: "test" },
    );
    const before = await readdir(dir);
    const error = await runRecipe(bad, { kernel: createJsKernel() }).catch((e: unknown) => e);
    expect(isGyozaError(error, "architecture-mismatch")).toBe(true);
    expect((error as Error).message).toMatch(/Stable Diffusion 1\.x.*Stable Diffusion XL/);
    expect(await readdir(dir)).toEqual(before);
  });

  it("rejects an input whose sha256 is not the one the recipe expects", async () => {
    const output = join(dir, "mismatch.safetensors");
    const bad = recipeFromData(
      {
        gyoza: 1,
        inputs: { a: { path: models.a, sha256: "0".repeat(64) }, b: { path: models.b } },
        steps: { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.5 } },
        output: { path: output },
      },
      { sourceName: "test" },
    );
    const before = await readdir(dir);
    const error = await runRecipe(bad, { kernel: createJsKernel() }).catch((e: unknown) => e);
    expect(isGyozaError(error, "hash-mismatch")).toBe(true);
    expect(await readdir(dir)).toEqual(before);
  });

  it("names a missing input file", async () => {
    const bad = recipeFromData(
      {
        gyoza: 1,
        inputs: { a: { path: join(dir, "nope.safetensors") }, b: { path: models.b } },
        steps: { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.5 } },
        output: { path: join(dir, "never.safetensors") },
      },
      { sourceName: "test" },
    );
    const error = await runRecipe(bad, { kernel: createJsKernel() }).catch((e: unknown) => e);
    expect(isGyozaError(error, "io")).toBe(true);
    expect((error as { file?: string }).file).toContain("nope.safetensors");
  });

  it("refuses to write over one of its inputs", async () => {
    const bad = recipe(
      { m: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.5 } },
      { path: models.b },
    );
    const error = await runRecipe(bad, { kernel: createJsKernel() }).catch((e: unknown) => e);
    expect(isGyozaError(error, "usage")).toBe(true);
  });
});

describe("whole-model pre-passes", () => {
  it("normalises a cosine merge by the similarity range measured over every merged key, as supermerger does", async () => {
    const { builtinMethods } = await import("../merge/index.js");
    const { encodeFromFloat32, decodeToFloat32 } = await import("../io/float-convert.js");
    const output = join(dir, "cosine-a.safetensors");
    await runRecipe(
      recipe(
        { m: { method: "cosine_a", inputs: { a: "a", b: "b" }, alpha: 0.1 } },
        { path: output, dtype: "fp16" },
      ),
      {
        kernel: createJsKernel(),
      },
    );
    const method = builtinMethods.get("cosine_a")!;
    const [a, b, out] = await Promise.all([
      openCheckpoint(models.a!),
      openCheckpoint(models.b!),
      openCheckpoint(output),
    ]);
    const load = async (c: Checkpoint, key: string) =>
      decodeToFloat32(await readTensorBytes(c.tensors.get(key)!), "F16");
    const measurements: Float64Array[] = [];
    for (const [key, tensor] of a.tensors) {
      if (!method.prepass!.includes(key)) continue;
      const context = { key, arithmetic: "fp32" as const, seed: 0, elementOffset: 0, shape: tensor.shape };
      measurements.push(method.prepass!.measure([await load(a, key), await load(b, key)], context));
    }
    const range = method.prepass!.finish(measurements);
    expect(range.sim_min).toBeLessThan(range.sim_max!);
    const key = "model.diffusion_model.output_blocks.3.1.proj_out.weight";
    const shape = a.tensors.get(key)!.shape;
    const expected = new Float32Array(await load(a, key));
    method.apply([await load(a, key), await load(b, key)], { alpha: 0.1, ...range }, expected, {
      key,
      arithmetic: "fp32",
      seed: 0,
      elementOffset: 0,
      shape,
    });
    expect(
      Buffer.from(await readTensorBytes(out.tensors.get(key)!)).equals(
        Buffer.from(encodeFromFloat32(expected, "F16")),
      ),
    ).toBe(true);
    await Promise.all([a.close(), b.close(), out.close()]);
  });
});

describe(".ckpt outputs", () => {
  const allBytes = async (path: string) => {
    const checkpoint = await openCheckpoint(path);
    try {
      const bytes = new Map<string, Buffer>();
      for (const [key, tensor] of checkpoint.tensors)
        bytes.set(key, Buffer.from(await readTensorBytes(tensor)));
      return { format: checkpoint.format, bytes };
    } finally {
      await checkpoint.close();
    }
  };
  const cosine = (a: string, b: string) => ({
    m: { method: "weighted_sum", inputs: { a, b }, alpha: { preset: "COSINE", base: 0.3 } },
  });

  /** The tiny models as torch checkpoints too (several write blocks, tensors of several merge chunks). */
  const tinyCkpts = async () => {
    for (const [name, seed] of [
      ["tinyA", 11],
      ["tinyB", 12],
    ] as const) {
      if (models[`${name}Ckpt`]) continue;
      models[`${name}Ckpt`] = join(dir, `${name}.ckpt`);
      await writeSyntheticCheckpoint(
        models[`${name}Ckpt`]!,
        { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed },
        "ckpt",
      );
    }
  };

  it("hold the safetensors output's bytes, from safetensors or .ckpt inputs, the same file on every run", async () => {
    await tinyCkpts();
    const kernel = await loadKernel();
    const run = async (inputs: [string, string], output: string) => {
      await runRecipe(
        recipe(cosine(...inputs), { path: join(dir, output), dtype: "fp16", step: "m" }, inputs),
        { kernel },
      );
      return join(dir, output);
    };
    const reference = await allBytes(await run(["tinyA", "tinyB"], "ref.safetensors"));
    const fromCkpt = await run(["tinyACkpt", "tinyBCkpt"], "from-ckpt.safetensors");
    const ckpts = [
      await run(["tinyA", "tinyB"], "run-1.ckpt"),
      await run(["tinyA", "tinyB"], "run-2.ckpt"),
      await run(["tinyACkpt", "tinyBCkpt"], "from-ckpt.ckpt"),
    ];
    for (const path of [fromCkpt, ...ckpts]) {
      const written = await allBytes(path);
      expect(written.format, path).toBe(path.endsWith(".ckpt") ? "ckpt-zip" : "safetensors");
      expect([...written.bytes.keys()].sort(), path).toEqual([...reference.bytes.keys()].sort());
      for (const [key, bytes] of reference.bytes)
        expect(written.bytes.get(key)!.equals(bytes), key).toBe(true);
    }
    // (from .ckpt inputs the state dict follows their key order: another pickle, same tensors)
    const first = readFileSync(ckpts[0]!);
    expect(readFileSync(ckpts[1]!).equals(first)).toBe(true);
  });

  it("reads cold inputs whose hashes are cached past the page cache, into the same bytes", async (context) => {
    await tinyCkpts();
    const direct = await open(models.tinyACkpt!, constants.O_RDONLY | (constants.O_DIRECT ?? 0)).catch(
      () => undefined,
    );
    await direct?.close();
    if (constants.O_DIRECT === undefined || !direct) return context.skip(); // no O_DIRECT here (tmpfs)
    const kernel = await loadKernel();
    const cacheDir = join(dir, "direct-hash-cache");
    const pairs: [string, string][] = [
      ["tinyA", "tinyB"],
      ["tinyACkpt", "tinyBCkpt"],
    ];
    for (const inputs of pairs) {
      const run = async (output: string, options: Parameters<typeof runRecipe>[1]) =>
        runRecipe(
          recipe(cosine(...inputs), { path: join(dir, output), dtype: "fp16", step: "m" }, [...inputs]),
          { kernel, hashCacheDir: cacheDir, ...options },
        );
      const cold = () => 0; // every input counts as out of the page cache
      // hashes not cached yet: the merge hashes its inputs alongside, so it reads them through the cache
      const hashing = await run(`direct-hashing-${inputs[0]}.ckpt`, { cachedBytes: cold });
      expect(hashing.readDirectly).toEqual([]);
      const cached = await run(`buffered-${inputs[0]}.ckpt`, { cachedBytes: () => Number.MAX_SAFE_INTEGER });
      expect(cached.readDirectly).toEqual([]);
      const result = await run(`direct-${inputs[0]}.ckpt`, { cachedBytes: cold });
      expect(result.readDirectly.sort()).toEqual(inputs.map((name) => models[name]!).sort());
      expect(result.inputHashes).toEqual(cached.inputHashes);
      const reference = readFileSync(join(dir, `buffered-${inputs[0]}.ckpt`));
      expect(readFileSync(join(dir, `direct-${inputs[0]}.ckpt`)).equals(reference)).toBe(true);
      expect(readFileSync(join(dir, `direct-hashing-${inputs[0]}.ckpt`)).equals(reference)).toBe(true);
    }
    // written as safetensors, a .ckpt is read out of its order: through the cache (prefetched), not directly
    const outOfOrder = await runRecipe(
      recipe(cosine("tinyACkpt", "tinyBCkpt"), { path: join(dir, "out-of-order.safetensors"), step: "m" }, [
        "tinyACkpt",
        "tinyBCkpt",
      ]),
      { kernel, hashCacheDir: cacheDir, cachedBytes: () => 0 },
    );
    expect(outOfOrder.readDirectly).toEqual([]);
  });

  it("an interrupted .ckpt merge leaves no file behind", async () => {
    const output = join(dir, "interrupted.ckpt");
    const before = await readdir(dir);
    const controller = new AbortController();
    let advanced = 0;
    const error = await runRecipe(
      recipe(cosine("tinyA", "tinyB"), { path: output, dtype: "fp16", step: "m" }, ["tinyA", "tinyB"]),
      {
        kernel: await loadKernel(),
        signal: controller.signal,
        onProgress: (event) => {
          if (event.type === "advance" && ++advanced === 20) controller.abort();
        },
      },
    ).catch((e: unknown) => e);
    expect(advanced).toBeGreaterThanOrEqual(20);
    expect(isGyozaError(error, "interrupted")).toBe(true);
    expect(await readdir(dir)).toEqual(before);
  });
});
