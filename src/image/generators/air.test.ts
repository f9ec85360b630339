import { describe, expect, it } from "vitest";
import { parseAir } from "./air.js";

describe("parseAir", () => {
  it.each([
    [
      "urn:air:sd1:checkpoint:civitai:4384@128713",
      { ecosystem: "sd1", type: "checkpoint", source: "civitai", modelId: "4384", versionId: "128713" },
    ],
    [
      "urn:air:sdxl:lora:civitai:1280702@1444863",
      { ecosystem: "sdxl", type: "lora", source: "civitai", modelId: "1280702", versionId: "1444863" },
    ],
    [
      "urn:air:sdxl:checkpoint:civitai:827184@2514310+2402203",
      {
        ecosystem: "sdxl",
        type: "checkpoint",
        source: "civitai",
        modelId: "827184",
        versionId: "2514310",
        fileId: "2402203",
      },
    ],
    [
      "urn:air:sd1:checkpoint:civitai:4384@128713.safetensor",
      {
        ecosystem: "sd1",
        type: "checkpoint",
        source: "civitai",
        modelId: "4384",
        versionId: "128713",
        format: "safetensor",
      },
    ],
    [
      "urn:air:sd1:checkpoint:civitai:4384",
      { ecosystem: "sd1", type: "checkpoint", source: "civitai", modelId: "4384" },
    ],
    [
      "urn:air:sdxl:vae:huggingface:stabilityai/sdxl-vae",
      { ecosystem: "sdxl", type: "vae", source: "huggingface", modelId: "stabilityai/sdxl-vae" },
    ],
    [
      "URN:AIR:flux1:lora:civitai:1@2",
      { ecosystem: "flux1", type: "lora", source: "civitai", modelId: "1", versionId: "2" },
    ],
  ])("splits %s", (text, parts) => {
    expect(parseAir(text)).toEqual(parts);
  });

  it.each([
    ["a plain file name", "dreamshaper_8.safetensors"],
    ["an AIR without its id", "urn:air:sd1:checkpoint:civitai"],
    ["an empty id", "urn:air:sd1:checkpoint:civitai:@128713"],
    ["an empty version", "urn:air:sd1:checkpoint:civitai:4384@"],
    ["two versions", "urn:air:sd1:checkpoint:civitai:4384@128713@5"],
    ["a Civitai model id that is not a number", "urn:air:sd1:checkpoint:civitai:dreamshaper@128713"],
    ["a Civitai version id that is not a number", "urn:air:sd1:checkpoint:civitai:4384@v8"],
    ["an empty ecosystem", "urn:air::checkpoint:civitai:4384@128713"],
    ["no urn:air: prefix", "sd1:checkpoint:civitai:4384@128713"],
    ["a layer suffix (old wiki spec, never written)", "urn:air:sd1:checkpoint:civitai:4384@128713:unet"],
    ["whitespace inside", "urn:air:sd1:checkpoint:civitai:4384 @128713"],
    ["a trailing space", "urn:air:sd1:checkpoint:civitai:4384@128713 "],
    ["an empty string", ""],
    ["a value longer than any AIR", `urn:air:sd1:checkpoint:huggingface:${"x".repeat(600)}`],
  ])("rejects %s", (_what, text) => {
    expect(parseAir(text)).toBeUndefined();
  });
});
