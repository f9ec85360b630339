import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BufferByteSource } from "../io/byte-source.js";
import { detectGeneration, detectHiddenGeneration } from "./detect-generation.js";
import type { GenerationInfo } from "./generators/generation-info.js";
import { textsByKey } from "./metadata-types.js";
import { readImageMetadata } from "./read-image-metadata.js";
import { type FixtureImage, fixtureImages } from "./test-support/fixture-images.js";

const fixtures = fixtureImages().filter((fixture) => !fixture.expected.problems.includes("zero-length file"));

async function infoOf(fixture: FixtureImage): Promise<GenerationInfo | undefined> {
  const metadata = await readImageMetadata(new BufferByteSource(readFileSync(fixture.path), fixture.path));
  return detectGeneration(textsByKey(metadata.texts));
}

/** The fields another library's expected output states, in our names (their parse, used as a cross-check). */
// biome-ignore lint/suspicious/noExplicitAny: other projects' expected output, untyped JSON read only here
type Untyped = any;

function upstreamFields(upstream: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const enslo = upstream.expected as Record<string, Untyped> | undefined;
  if (enslo) {
    Object.assign(fields, {
      prompt: enslo.prompt,
      negativePrompt: enslo.negativePrompt,
      width: enslo.width,
      height: enslo.height,
      modelName: enslo.model?.name,
      modelHash: enslo.model?.hash,
      sampler: enslo.sampling?.sampler,
      scheduler: enslo.sampling?.scheduler,
      steps: enslo.sampling?.steps,
      cfgScale: enslo.sampling?.cfg,
      seed: enslo.sampling?.seed,
      clipSkip: enslo.sampling?.clipSkip,
    });
  }
  const sampler = (upstream.expected_samplers as Record<string, Untyped>[] | undefined)?.[0];
  if (sampler) {
    Object.assign(fields, {
      prompt: sampler.prompts?.[0]?.value,
      negativePrompt: sampler.negative_prompts?.[0]?.value,
      modelName: sampler.model?.name,
      modelHash: sampler.model?.hash ?? undefined,
      sampler: sampler.name,
      steps: sampler.parameters?.steps,
      cfgScale: sampler.parameters?.cfg_scale,
      seed: sampler.parameters?.seed,
    });
  }
  for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key];
  return fields;
}

function ourFields(info: GenerationInfo | undefined, keys: string[]): Record<string, unknown> {
  const all: Record<string, unknown> = {
    ...info,
    modelName: info?.model?.name,
    modelHash: info?.model?.hash,
  };
  return Object.fromEntries(keys.map((key) => [key, all[key]]));
}

/** Text fields compare without outer whitespace (libraries differ on trimming); numbers compare as numbers. */
function normalise(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).map(([key, value]) => [
      key,
      typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value) && key !== "seed"
        ? Number(value)
        : typeof value === "string"
          ? value.trim()
          : value,
    ]),
  );
}

const hidesInPixels = (f: FixtureImage) =>
  Boolean(f.expected.stealth_pnginfo) && Object.keys(f.expected.chunks).length === 0;

describe("detectGeneration on the fixture images", () => {
  it.each(fixtures.map((f) => [f.stem, f] as const))("recognises the generator of %s", async (_, fixture) => {
    const info = await infoOf(fixture);
    // The stealth fixture has no text chunks: its infotext hides in the pixels (see stealth-pnginfo).
    const expected = hidesInPixels(fixture) ? "none" : fixture.expected.generator;
    expect(info?.generator ?? "none").toBe(expected);
  });

  const hidden = fixtures.filter((f) => f.expected.stealth_pnginfo);
  it.each(hidden.map((f) => [f.stem, f] as const))(
    "recognises the generator hidden in the pixels of %s",
    (_, fixture) => {
      const info = detectHiddenGeneration(fixture.expected.stealth_pnginfo!.text);
      expect(info?.generator).toBe(fixture.expected.generator);
    },
  );

  const crossChecked = fixtures.filter(
    (f) => f.upstream && !hidesInPixels(f) && Object.keys(upstreamFields(f.upstream)).length > 0,
  );
  it.each(crossChecked.map((f) => [f.stem, f] as const))(
    "parses %s into the fields its source project expects",
    async (_, fixture) => {
      const expected = upstreamFields(fixture.upstream!);
      const info = await infoOf(fixture);
      const seedAsText = (fields: Record<string, unknown>) => ({
        ...fields,
        seed: fields.seed === undefined ? undefined : String(fields.seed),
      });
      expect(seedAsText(normalise(ourFields(info, Object.keys(expected))))).toEqual(
        seedAsText(normalise(expected)),
      );
    },
  );

  it("says nothing about images whose only texts are screenshot notes, editor comments or dates", async () => {
    const quiet = fixtures.filter(
      (f) => f.expected.generator === "none" && Object.keys(f.expected.chunks).length > 0,
    );
    expect(quiet.map((f) => f.stem)).toContain("none_promptreader_macos_screenshot_png");
    for (const fixture of quiet) expect(await infoOf(fixture), fixture.stem).toBeUndefined();
  });

  it("extracts LoRAs with their hashes from Lora hashes and the prompt's lora tags", async () => {
    const info = await infoOf(fixtures.find((f) => f.stem === "a1111_derived_easy-reforge_lora_hashes_png")!);
    expect(info?.loras).toEqual([{ name: "NoobV065sHyperDmd", weight: 1, hash: "45b5bd0819cf" }]);
    expect(info?.clipSkip).toBe(1);
  });

  it("extracts chained LoraLoader nodes and the checkpoint from a ComfyUI graph", async () => {
    const info = await infoOf(fixtures.find((f) => f.stem === "comfyui_comfyexamples_lora_multiple_png")!);
    expect(info?.loras.map((lora) => lora.name)).toEqual([
      "epiNoiseoffset_v2.safetensors",
      "theovercomer8sContrastFix_sd15.safetensors",
    ]);
    expect(info?.model?.name).toBe("v1-5-pruned-emaonly.ckpt");
  });

  it("reads a ComfyUI workflow when the image has no API prompt", async () => {
    const info = await infoOf(
      fixtures.find((f) => f.stem === "comfyui_promptreadernode_simple_example_png")!,
    );
    expect(info).toMatchObject({
      generator: "comfyui",
      seed: 230662586134329,
      steps: 20,
      width: 512,
      height: 512,
    });
  });
});
