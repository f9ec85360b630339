import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { encodeSafetensorsHeader, referenceOrder } from "../io/safetensors/write-safetensors.js";
import { type SyntheticLayout, syntheticTensors } from "../synth/synthetic-model.js";
import { inspectCheckpoint } from "./inspect-checkpoint.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-inspect-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * A full-size checkpoint (real key names and shapes) as a sparse file: the real header, then a hole
 * the size of the data. Inspect reads headers only, so this is what it sees of a 2–7 GB model.
 */
async function sparseCheckpoint(
  name: string,
  layout: SyntheticLayout,
  options: { ema?: boolean; inpaint?: boolean } = {},
) {
  const tensors = syntheticTensors({ layout, size: "full", dtype: "F16", seed: 1, ...options });
  let begin = 0;
  const planned = referenceOrder(tensors).map((tensor) => {
    const entry = { ...tensor, begin };
    begin += tensor.byteLength;
    return entry;
  });
  const header = encodeSafetensorsHeader(planned, { format: "pt" });
  const path = join(dir, name);
  const handle = await open(path, "w");
  await handle.write(header);
  await handle.truncate(header.byteLength + begin);
  await handle.close();
  return path;
}

describe("inspect on full-size files", () => {
  it.each([
    ["sd15.safetensors", "sd1-ldm", {}, "sd1", 2.1e9],
    ["sd15-inpainting.safetensors", "sd1-ldm", { inpaint: true }, "sd1-inpaint", 2.1e9],
    ["sd21.safetensors", "sd2-ldm", {}, "sd2", 2.5e9],
    ["sdxl.safetensors", "sdxl-sgm", {}, "sdxl", 6.8e9],
  ] as const)("identifies %s (%s) in under a second", async (name, layout, options, id, minimumBytes) => {
    const path = await sparseCheckpoint(name, layout, options);
    const started = performance.now();
    const checkpoint = await openCheckpoint(path);
    const report = await inspectCheckpoint(checkpoint);
    await checkpoint.close();
    const seconds = (performance.now() - started) / 1000;
    expect(report.size).toBeGreaterThan(minimumBytes);
    expect(report.architecture.id).toBe(id);
    expect(report.architecture.ambiguous).toBe(false);
    // the hole reads as zeros: CLIP-L position_ids are all 0 instead of arange(77), and inspect says so
    const clipL = layout !== "sd2-ldm";
    expect(report.warnings.map((w) => w.code)).toEqual(clipL ? ["position-ids-values"] : []);
    expect(seconds).toBeLessThan(1);
  });

  it("counts SD 1.5's parameters per component like the reference layout (859.5M UNet)", async () => {
    const path = await sparseCheckpoint("sd15-ema.safetensors", "sd1-ldm", { ema: true });
    const checkpoint = await openCheckpoint(path);
    const report = await inspectCheckpoint(checkpoint);
    await checkpoint.close();
    const unet = report.components.find((c) => c.name === "unet")!;
    expect(Math.round(unet.parameters / 1e5) / 10).toBe(859.5);
    expect(report.components.map((c) => c.name)).toEqual(["unet", "text_encoder", "vae", "ema"]);
    expect(report.warnings.map((w) => w.code)).toEqual(["ema-present", "position-ids-values"]);
  });
});

describe("inspect on kohya-layout files (diffusers names in one file)", () => {
  it.each([
    ["sd15-kohya.safetensors", "sd1-kohya", {}, "sd1", ["unet", "text_encoder", "vae"]],
    [
      "sd15-kohya-inpainting.safetensors",
      "sd1-kohya",
      { inpaint: true },
      "sd1-inpaint",
      ["unet", "text_encoder", "vae"],
    ],
    ["sdxl-kohya.safetensors", "sdxl-kohya", {}, "sdxl", ["unet", "text_encoder", "text_encoder_2", "vae"]],
    [
      "sdxl-kohya-inpainting.safetensors",
      "sdxl-kohya",
      { inpaint: true },
      "sdxl-inpaint",
      ["unet", "text_encoder", "text_encoder_2", "vae"],
    ],
  ] as const)(
    "names %s's architecture (%s → %s) and its kohya key layout, with the convert command to run",
    async (name, layout, options, id, components) => {
      const path = await sparseCheckpoint(name, layout, options);
      const checkpoint = await openCheckpoint(path);
      const report = await inspectCheckpoint(checkpoint);
      await checkpoint.close();
      expect(report.architecture).toMatchObject({ id, keyLayout: "kohya", ambiguous: false });
      expect(report.architecture.suggestion).toMatch(/gyoza convert <file> <out>\.safetensors --layout ldm/);
      expect(report.components.map((c) => c.name)).toEqual(components);
      const codes = report.warnings.map((w) => w.code);
      expect(codes).not.toContain("junk-keys");
      expect(codes).not.toContain("missing-keys");
    },
  );

  it.each([
    ["sd1-ldm", "ldm"],
    ["sd2-ldm", "ldm"],
    ["sdxl-sgm", "sgm"],
  ] as const)("says a %s file's key layout is %s, with no suggestion", async (layout, keyLayout) => {
    const path = await sparseCheckpoint(`${layout}-key-layout.safetensors`, layout);
    const checkpoint = await openCheckpoint(path);
    const report = await inspectCheckpoint(checkpoint);
    await checkpoint.close();
    expect(report.architecture.keyLayout).toBe(keyLayout);
    expect(report.architecture.suggestion).toBeUndefined();
  });
});
