import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { detectArchitecture } from "../../arch/detect.js";
import { convertKey, findLayoutConversion } from "../../arch/layout-conversion.js";
import { openCheckpoint } from "../../io/open-checkpoint.js";
import { readTensorBytes } from "../../io/read-tensor.js";
import type { Checkpoint } from "../../io/tensor.js";
import { type SyntheticLayout, syntheticTensors } from "../../synth/synthetic-model.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { buildValidSafetensors } from "../../test-support/build-safetensors.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache("gyoza-cli-convert-layout-", (path) => {
  dir = path;
});

/** Micro models (widths ÷ 64, real key names) in each layout; kohya and ldm ones from different seeds. */
const micro = (layout: SyntheticLayout, seed: number) =>
  ({ layout, size: "micro", dtype: "F16", seed }) as const;
const paths: Record<string, string> = {};

beforeAll(async () => {
  for (const [name, layout, seed] of [
    ["sd1-kohya", "sd1-kohya", 1],
    ["sd1-ldm", "sd1-ldm", 2],
    ["sdxl-kohya", "sdxl-kohya", 3],
    ["sdxl-sgm", "sdxl-sgm", 4],
  ] as const) {
    paths[name] = join(dir, `${name}.safetensors`);
    await writeSyntheticCheckpoint(paths[name], micro(layout, seed));
  }
});

async function withCheckpoint<T>(path: string, use: (checkpoint: Checkpoint) => Promise<T>): Promise<T> {
  const checkpoint = await openCheckpoint(path);
  try {
    return await use(checkpoint);
  } finally {
    await checkpoint.close();
  }
}

/** A row-major [rows, cols] matrix of `size`-byte elements, transposed. */
function transposed(bytes: Uint8Array, rows: number, cols: number, size: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      out.set(bytes.subarray((r * cols + c) * size, (r * cols + c + 1) * size), (c * rows + r) * size);
  return out;
}

/** Each source tensor's bytes as they should appear in the converted file, by converted key. */
async function expectedBytes(source: Checkpoint, from: string): Promise<Map<string, Uint8Array>> {
  const conversion = findLayoutConversion(from, "ldm")!;
  const expected = new Map<string, Uint8Array>();
  const joins = new Map<string, Uint8Array[]>();
  for (const [key, tensor] of source.tensors) {
    const { key: target, rule } = convertKey(key, conversion)!;
    const bytes = await readTensorBytes(tensor);
    if (rule.concat) {
      const parts = joins.get(target) ?? [];
      parts[rule.concat.part] = bytes;
      joins.set(target, parts);
    } else if (rule.reshape === "transpose") {
      expected.set(target, transposed(bytes, tensor.shape[0]!, tensor.shape[1]!, 2));
    } else expected.set(target, bytes);
  }
  for (const [target, parts] of joins) expected.set(target, Buffer.concat(parts));
  return expected;
}

describe("gyoza convert --layout ldm", () => {
  it.each([
    ["sd1-kohya", "sd1-ldm", "sd1", "ldm"],
    ["sdxl-kohya", "sdxl-sgm", "sdxl", "sgm"],
  ] as const)(
    "renames a %s file into the %s layout with every tensor's bytes unchanged",
    async (from, to, id, keyLayout) => {
      const out = join(dir, `${from}-converted.safetensors`);
      const { code, stdout, stderr } = await runCli(
        "convert",
        paths[from]!,
        out,
        "--layout",
        "ldm",
        "--json",
      );
      expect(code, stderr).toBe(0);
      const result = JSON.parse(stdout);
      expect(result.relayout).toMatchObject({ from, to });
      const expected = await withCheckpoint(paths[from]!, (source) => expectedBytes(source, from));
      await withCheckpoint(out, async (converted) => {
        const detection = detectArchitecture(converted.tensors);
        expect(detection).toMatchObject({ id, keyLayout, ambiguous: false });
        // the keys and shapes of a model made in the target layout: all it requires, nothing it does not know
        const required = syntheticTensors(micro(to, 0)).map((t) => t.key);
        const known = new Map(
          syntheticTensors({ ...micro(to, 0), optional: true }).map((t) => [t.key, t.shape]),
        );
        expect(required.filter((key) => !converted.tensors.has(key))).toEqual([]);
        for (const [key, tensor] of converted.tensors) expect(tensor.shape, key).toEqual(known.get(key));
        for (const [key, bytes] of expected) {
          expect(Buffer.from(await readTensorBytes(converted.tensors.get(key)!)).equals(bytes), key).toBe(
            true,
          );
        }
        for (const key of result.relayout.added) {
          const ids = new BigInt64Array((await readTensorBytes(converted.tensors.get(key)!)).slice().buffer);
          expect([...ids]).toEqual([...Array(77).keys()].map(BigInt));
        }
        expect(converted.metadata["modelspec.implementation"]).toBe("sgm");
      });
    },
  );

  it("says what it did besides renaming", async () => {
    const out = join(dir, "sd1-summary.safetensors");
    const { code, stdout, stderr } = await runCli("convert", paths["sd1-kohya"]!, out, "--layout", "ldm");
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(
      "keys renamed sd1-kohya → sd1-ldm, 8 reshaped to 1x1 convolutions, added cond_stage_model.transformer.text_model.embeddings.position_ids",
    );
  });

  it("leaves a file already in the ldm layout as it is", async () => {
    const out = join(dir, "already-ldm.safetensors");
    const { code, stdout, stderr } = await runCli(
      "convert",
      paths["sd1-ldm"]!,
      out,
      "--layout",
      "ldm",
      "--json",
    );
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout).relayout).toBeUndefined();
  });

  it("refuses a layout name it does not know, suggesting the one meant (usage error)", async () => {
    const out = join(dir, "typo.safetensors");
    const { code, stderr } = await runCli("convert", paths["sd1-kohya"]!, out, "--layout", "ldn");
    expect(code).toBe(2);
    expect(stderr).toContain('no key layout "ldn"');
    expect(stderr).toContain("did you mean --layout ldm?");
    expect(existsSync(out)).toBe(false);
  });

  it("refuses a file whose key layout it cannot convert, saying what the file is (usage error)", async () => {
    const odd = join(dir, "odd.safetensors");
    await writeFile(
      odd,
      buildValidSafetensors([{ key: "mystery.weight", dtype: "F16", shape: [2], data: new Uint8Array(4) }]),
    );
    const out = join(dir, "odd-ldm.safetensors");
    const { code, stderr } = await runCli("convert", odd, out, "--layout", "ldm");
    expect(code).toBe(2);
    expect(stderr).toContain("no conversion to the ldm layout for a file of unknown architecture");
    expect(existsSync(out)).toBe(false);
  });
});

describe("merging a kohya-layout model", () => {
  it.each([
    ["sd1-kohya", "sd1-ldm", "sd1", "ldm"],
    ["sdxl-kohya", "sdxl-sgm", "sdxl", "sgm"],
  ] as const)("merges a %s file with a %s model once it is converted", async (from, to, id, keyLayout) => {
    const converted = join(dir, `${from}-for-merge.safetensors`);
    const merged = join(dir, `${from}-plus-${to}.safetensors`);
    expect((await runCli("convert", paths[from]!, converted, "--layout", "ldm")).code).toBe(0);
    const { code, stdout, stderr } = await runCli(
      "merge",
      converted,
      paths[to]!,
      "--alpha",
      "0.5",
      "-o",
      merged,
      "--json",
    );
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.architecture).toBe(id);
    expect(result.onlyInLaterInputs).toEqual([]);
    // UNet and text encoders merged; copied: the VAE (kept from a by default), position_ids (never
    // interpolated) and, for SDXL, the optional keys the synthetic b leaves out
    expect(result.merged + result.copied).toBe(result.tensors);
    expect(result.merged).toBeGreaterThan(result.copied);
    await withCheckpoint(merged, async (checkpoint) => {
      expect(detectArchitecture(checkpoint.tensors)).toMatchObject({ id, keyLayout });
    });
  });

  it("refuses a kohya-layout input before reading a tensor, with the convert command as the fix", async () => {
    const merged = join(dir, "refused.safetensors");
    const kohya = paths["sd1-kohya"]!;
    const { code, stderr } = await runCli("merge", kohya, paths["sd1-ldm"]!, "--alpha", "0.5", "-o", merged);
    expect(code).toBe(1);
    expect(stderr).toContain('input "a" is Stable Diffusion 1.x with kohya key names');
    expect(stderr).not.toContain("unknown");
    expect(stderr).toContain(
      `fix: gyoza convert ${kohya} ${join(dir, "sd1-kohya-ldm.safetensors")} --layout ldm`,
    );
    expect(existsSync(merged)).toBe(false);
  });
});
