import { describe, expect, it } from "vitest";
import { detectGeneration } from "../image/detect-generation.js";
import { readFileProvenance } from "./file-provenance.js";
import { imageResources, nameStem } from "./library-images.js";

const SHA_A = "a".repeat(64);
const SHA_B = "B".repeat(64);

describe("readFileProvenance", () => {
  it("reads an A1111 merge record: the recipe as written, its A/B parents with sd_merge_models' names and legacy hashes", () => {
    const recipe = JSON.stringify({
      type: "webui",
      primary_model_hash: SHA_A,
      secondary_model_hash: SHA_B,
      tertiary_model_hash: null,
      interp_method: "Weighted sum",
      multiplier: 0.3,
    });
    const provenance = readFileProvenance({
      sd_merge_recipe: recipe,
      sd_merge_models: JSON.stringify({
        [SHA_A]: { name: "anime.safetensors", legacy_hash: "1234abcd" },
        [SHA_B.toLowerCase()]: { name: "photo.safetensors", legacy_hash: "deadbeef" },
      }),
    });
    expect(provenance).toMatchObject({ recipe, recipeFormat: "a1111", title: null });
    expect(provenance!.parents).toEqual([
      {
        role: "A",
        name: "anime.safetensors",
        sha256: SHA_A,
        autov3: null,
        autov2: null,
        legacyHash: "1234abcd",
      },
      {
        role: "B",
        name: "photo.safetensors",
        sha256: SHA_B.toLowerCase(),
        autov3: null,
        autov2: null,
        legacyHash: "deadbeef",
      },
    ]);
  });

  it("reads a supermerger record (model_a/model_b) as format supermerger", () => {
    const provenance = readFileProvenance({
      sd_merge_recipe: JSON.stringify({
        type: "sd-webui-supermerger",
        model_a: SHA_A,
        model_b: SHA_B,
        mode: "Weight sum",
      }),
      "modelspec.title": "Silicon-29",
      "modelspec.encoder_layer": "2",
    });
    expect(provenance).toMatchObject({ recipeFormat: "supermerger", title: "Silicon-29", clipSkip: 2 });
    expect(provenance!.parents.map((parent) => parent.role)).toEqual(["A", "B"]);
  });

  it("says nothing for a file whose metadata records neither a recipe nor a title", () => {
    expect(readFileProvenance({ ss_network_dim: "32", format: "pt" })).toBeUndefined();
  });

  it("keeps no hash that is not hex of the right length: placeholders, prototypes and junk are dropped", () => {
    const provenance = readFileProvenance({
      gyoza_recipe: JSON.stringify({
        inputs: {
          a: { path: "C:\\models\\anime.safetensors", sha256: "~S0~".padEnd(64, "~"), autov3: "zz" },
          b: { sha256: SHA_A, autov3: `0x${SHA_B}` },
          c: "not an object",
        },
        steps: { merge: { method: "weighted_sum", inputs: { a: "a", b: "b" } } },
      }),
      "modelspec.encoder_layer": "-1; DROP TABLE files",
    });
    expect(provenance!.recipeFormat).toBe("gyoza");
    expect(provenance!.clipSkip).toBeNull();
    expect(provenance!.parents).toEqual([
      { role: "a", name: "anime.safetensors", sha256: null, autov3: null, autov2: null, legacyHash: null },
      { role: "b", name: null, sha256: SHA_A, autov3: SHA_B.toLowerCase(), autov2: null, legacyHash: null },
      { role: "c", name: null, sha256: null, autov3: null, autov2: null, legacyHash: null },
    ]);
  });

  it("ignores a recipe that is not JSON, or a hostile `__proto__` field, without throwing", () => {
    expect(readFileProvenance({ gyoza_recipe: "{ not json", sd_merge_recipe: "[1, 2]" })).toBeUndefined();
    const hostile = readFileProvenance({
      gyoza_recipe: '{"inputs": {"__proto__": {"sha256": "' + SHA_A + '"}}, "steps": {}}',
    });
    expect(hostile!.recipeFormat).toBe("gyoza");
    expect(hostile!.parents).toEqual([
      { role: "__proto__", name: null, sha256: SHA_A, autov3: null, autov2: null, legacyHash: null },
    ]);
    expect(({} as Record<string, unknown>).sha256).toBeUndefined();
  });

  it("drops a metadata value over the text limit instead of storing it", () => {
    expect(readFileProvenance({ "modelspec.title": "x".repeat(2_000_000) })).toBeUndefined();
  });
});

describe("imageResources", () => {
  it("takes a Civitai version id from an urn:air, uppercases hashes, and drops the empty-file hash", () => {
    const info = detectGeneration({
      parameters:
        'a gyoza\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 8x8, Model hash: e3b0c44298, Model: empty, Lora hashes: "style: 0xABCDEF012345"',
    })!;
    const resources = imageResources({
      ...info,
      loras: [
        ...info.loras,
        {
          name: "urn:air:sd1:lora:civitai:66@77",
          air: { ecosystem: "sd1", type: "lora", source: "civitai", modelId: "66", versionId: "77" },
        },
      ],
    });
    expect(resources.find((resource) => resource.kind === "checkpoint")).toMatchObject({
      hash: null,
      nameStem: "empty",
    });
    expect(resources.find((resource) => resource.name === "style")).toMatchObject({ hash: "ABCDEF012345" });
    expect(resources.find((resource) => resource.name?.startsWith("urn:air"))).toMatchObject({
      civitaiVersionId: 77,
      nameStem: null,
    });
  });

  it("reduces a recorded file name to its lowercase stem: folders and extension go", () => {
    expect(nameStem("SDXL\\Juggernaut_v9.safetensors")).toBe("juggernaut_v9");
    expect(nameStem("  ")).toBeNull();
  });
});
