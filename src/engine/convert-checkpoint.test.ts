import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inspectCheckpoint } from "../arch/inspect-checkpoint.js";
import { isGyozaError } from "../errors.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { readTensorBytes } from "../io/read-tensor.js";
import { createJsKernel } from "../kernels/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { FIXTURE_DIRS } from "../test-support/fixture-dirs.js";
import { convertCheckpoint } from "./convert-checkpoint.js";

const FIXTURES = FIXTURE_DIRS.ckpt;
const fixtureNames = readdirSync(FIXTURES).filter((name) => !name.endsWith(".json") && !name.endsWith(".md"));
const good = fixtureNames.filter((name) => !name.startsWith("mal_"));
const hostile = fixtureNames.filter((name) => name.startsWith("mal_"));

interface Expected {
  top_level_keys: string[];
  tensors: Record<string, { dtype: string; shape: number[]; sha256_contiguous: string }>;
  reason?: string;
}
const expectedOf = (name: string): Expected =>
  JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), "utf8"));

/** The state dict as a loader sees it: the tensors under `state_dict`, else the root's. */
function expectedStateDict(expected: Expected): Map<string, Expected["tensors"][string]> {
  const wrapped = expected.top_level_keys.includes("state_dict");
  const out = new Map<string, Expected["tensors"][string]>();
  for (const [path, tensor] of Object.entries(expected.tensors)) {
    if (!wrapped) out.set(path, tensor);
    else if (path.startsWith("state_dict.")) out.set(path.slice("state_dict.".length), tensor);
  }
  return out;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-convert-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("inspect and convert on checkpoints written by real torch", () => {
  it.each(good)("inspects %s to its expected keys, dtypes and shapes", async (name) => {
    const checkpoint = await openCheckpoint(join(FIXTURES, name));
    const report = await inspectCheckpoint(checkpoint);
    await checkpoint.close();
    const expected = expectedStateDict(expectedOf(name));
    expect(Object.keys(report.tensors).sort()).toEqual([...expected.keys()].sort());
    for (const [key, tensor] of expected)
      expect(report.tensors[key], key).toEqual({ dtype: tensor.dtype, shape: tensor.shape });
    expect(report.format).toMatch(/^ckpt-(zip|legacy)$/);
  });

  it.each(good)("converts %s to safetensors with every tensor's bytes unchanged", async (name) => {
    const output = join(dir, "out.safetensors");
    await convertCheckpoint({ input: join(FIXTURES, name), output, kernel: createJsKernel() });
    const converted = await openCheckpoint(output);
    const expected = expectedStateDict(expectedOf(name));
    expect(converted.tensors.size).toBe(expected.size);
    for (const [key, tensor] of expected) {
      // an A1111 .pt embedding is written in A1111's safetensors layout: its one tensor is emb_params
      const stored = converted.tensors.get(key === "string_to_param.*" ? "emb_params" : key)!;
      expect(stored.dtype, key).toBe(tensor.dtype);
      const sha = createHash("sha256")
        .update(await readTensorBytes(stored))
        .digest("hex");
      expect(sha, key).toBe(tensor.sha256_contiguous);
    }
    await converted.close();
  });

  it.each(hostile)("refuses to convert %s and writes nothing", async (name) => {
    const error = await convertCheckpoint({
      input: join(FIXTURES, name),
      output: join(dir, "out.safetensors"),
      kernel: createJsKernel(),
    }).catch((e: unknown) => e);
    expect(isGyozaError(error), String(error)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("convert options", () => {
  it("prunes EMA, converts to fp16, bakes a standalone VAE and resets position_ids", async () => {
    const model = join(dir, "model.ckpt");
    const vae = join(dir, "vae.ckpt");
    await writeSyntheticCheckpoint(
      model,
      { layout: "sd1-ldm", size: "micro", dtype: "F32", seed: 1, ema: true },
      "ckpt",
    );
    await writeSyntheticCheckpoint(
      vae,
      { layout: "sd1-ldm", size: "micro", dtype: "F32", seed: 9, vaeOnly: true },
      "ckpt",
    );
    const output = join(dir, "out.safetensors");
    const result = await convertCheckpoint({
      input: model,
      output,
      dtype: "F16",
      prune: true,
      bakeVae: vae,
      fixClip: true,
      kernel: createJsKernel(),
    });
    expect(result.dropped.filter((key) => key.startsWith("model_ema.")).length).toBe(result.dropped.length);
    expect(result.dropped.length).toBeGreaterThan(600);
    const out = await openCheckpoint(output);
    const vaeFile = await openCheckpoint(vae);
    const report = await inspectCheckpoint(out);
    expect(report.architecture.id).toBe("sd1");
    expect(report.warnings.map((w) => w.code)).toEqual([]);
    expect(Object.values(report.tensors).filter((t) => t.dtype === "F32")).toEqual([]);
    const baked = out.tensors.get("first_stage_model.decoder.conv_out.weight")!;
    const source = vaeFile.tensors.get("decoder.conv_out.weight")!;
    const { convertElements } = await import("../io/float-convert.js");
    expect(
      Buffer.from(await readTensorBytes(baked)).equals(
        Buffer.from(convertElements(await readTensorBytes(source), "F32", "F16")),
      ),
    ).toBe(true);
    expect(report.metadata["modelspec.hash_sha256"]).toMatch(/^0x[0-9a-f]{64}$/);
    await out.close();
    await vaeFile.close();
  });

  it("refuses to overwrite its input", async () => {
    const model = join(dir, "model.safetensors");
    await writeSyntheticCheckpoint(model, { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: 1 });
    const before = readFileSync(model);
    const error = await convertCheckpoint({ input: model, output: model, kernel: createJsKernel() }).catch(
      (e: unknown) => e,
    );
    expect(isGyozaError(error, "usage")).toBe(true);
    expect(readFileSync(model).equals(before)).toBe(true);
  });

  it("widens fp16 and bf16 to fp32 exactly, and records the data sha256 it wrote", async () => {
    const { convertElements } = await import("../io/float-convert.js");
    const { loadKernel } = await import("../kernels/index.js");
    const { hashFile } = await import("../hash/index.js");
    for (const dtype of ["F16", "BF16"] as const) {
      const model = join(dir, `half-${dtype}.safetensors`);
      await writeSyntheticCheckpoint(model, { layout: "sd1-ldm", size: "micro", dtype, seed: 4 });
      const output = join(dir, `wide-${dtype}.safetensors`);
      await convertCheckpoint({ input: model, output, dtype: "F32", kernel: await loadKernel() });
      const [source, out] = [await openCheckpoint(model), await openCheckpoint(output)];
      let widened = 0;
      for (const [key, tensor] of source.tensors) {
        if (tensor.dtype !== dtype) continue;
        const got = out.tensors.get(key)!;
        expect(got.dtype, key).toBe("F32");
        const want = Buffer.from(convertElements(await readTensorBytes(tensor), dtype, "F32"));
        expect(Buffer.from(await readTensorBytes(got)).equals(want), key).toBe(true);
        widened++;
      }
      expect(widened).toBeGreaterThan(1000);
      const selfHash = out.metadata["modelspec.hash_sha256"];
      const hashes = await hashFile(output, { algorithms: ["autov3"], cacheDir: false });
      expect(selfHash).toBe(`0x${hashes.autoV3Full!.toLowerCase()}`);
      await Promise.all([source.close(), out.close()]);
    }
  });

  it("flags corrupted position_ids and repairs them with fixClip", async () => {
    const { SafetensorsWriter } = await import("../io/safetensors/write-safetensors.js");
    const path = join(dir, "bad-clip.safetensors");
    const writer = await SafetensorsWriter.create(path, [
      {
        key: "cond_stage_model.transformer.text_model.embeddings.position_ids",
        dtype: "F32",
        shape: [1, 77],
      },
    ]);
    const floats = new Float32Array(77).map((_, i) => i + (i === 40 ? 0.0001 : 0));
    await writer.write(new Uint8Array(floats.buffer));
    await writer.finish();
    const bad = await openCheckpoint(path);
    expect((await inspectCheckpoint(bad)).warnings.map((w) => w.code)).toContain("position-ids-dtype");
    await bad.close();
    const fixed = join(dir, "fixed.safetensors");
    await convertCheckpoint({ input: path, output: fixed, fixClip: true, kernel: createJsKernel() });
    const out = await openCheckpoint(fixed);
    const ids = out.tensors.get("cond_stage_model.transformer.text_model.embeddings.position_ids")!;
    expect(ids.dtype).toBe("I64");
    expect([...new BigInt64Array((await readTensorBytes(ids)).slice().buffer)]).toEqual(
      Array.from({ length: 77 }, (_, i) => BigInt(i)),
    );
    await out.close();
  });
});
