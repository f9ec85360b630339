import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { GenerationInfo } from "../image/index.js";
import { huggingFaceBaseModel, huggingFaceLicense, modelCard } from "./model-card.js";
import type { PublishedImage } from "./publish-manifest.js";

function frontMatter(card: string): Record<string, unknown> {
  const match = /^---\n([\s\S]*?)\n---\n/.exec(card);
  expect(match).not.toBeNull();
  return parse(match![1]!) as Record<string, unknown>;
}

function image(prompt: string): PublishedImage {
  const generation: GenerationInfo = {
    generator: "a1111",
    prompt,
    loras: [],
    embeddings: [],
    extra: {},
    raw: {},
  };
  return { name: "images/a.png", from: "a.png", width: 8, height: 8, generation };
}

describe("the model card", () => {
  it.each([
    ["CreativeML Open RAIL-M", { license: "creativeml-openrail-m" }],
    ["CreativeML Open RAIL++-M", { license: "openrail++" }],
    ["Apache 2.0", { license: "apache-2.0" }],
    ["Fair AI Public License 1.0-SD", { license: "other", license_name: "fair-ai-public-license-1.0-sd" }],
  ])("maps the license %s to the Hub's id", (name, expected) => {
    expect(huggingFaceLicense(name)).toEqual(expected);
  });

  it.each([
    ["SD 1.5", "stable-diffusion-v1-5/stable-diffusion-v1-5"],
    ["SDXL 1.0", "stabilityai/stable-diffusion-xl-base-1.0"],
    ["Pony", undefined],
  ])("maps the base model %s to a Hub repo when it has one", (name, expected) => {
    expect(huggingFaceBaseModel(name)).toBe(expected);
  });

  it("keeps front matter intact when a prompt or tag holds YAML and Markdown syntax", () => {
    const prompt = "a\n---\nlicense: mit\n# not a heading: [x](y) | z";
    const card = modelCard({
      source: {
        model: { name: "Mix | ---", tags: ["---", "key: value"] },
        version: { name: "v1", license: "MIT" },
        files: [],
      },
      files: [],
      images: [image(prompt)],
      recipes: [],
    });
    const front = frontMatter(card);
    expect(front.license).toBe("mit");
    expect(front.tags).toEqual(["stable-diffusion", "text-to-image", "---", "key: value"]);
    expect(front.widget).toEqual([{ text: prompt, output: { url: "images/a.png" } }]);
    // the sample's alt text is one line with the table and link syntax escaped
    expect(card).toContain("![a](images/a.png)");
  });

  it("shows the recipe YAML only, without a tree, when it is not a recipe gyoza can load", () => {
    const card = modelCard({
      source: {
        model: { name: "M" },
        version: { name: "v1" },
        files: [],
        recipe: { name: "r", text: "not: [a recipe" },
      },
      files: [],
      images: [],
      recipes: ["recipes/r.yaml"],
    });
    expect(card).toContain(
      "## Recipe\n\nReplay it with `gyoza merge recipes/r.yaml`:\n\n```yaml\nnot: [a recipe\n```",
    );
  });

  it("fences a recipe holding a code fence with a longer fence, so it cannot end the block", () => {
    const text = "gyoza: 1\n# ```\n# ## injected heading\n";
    const card = modelCard({
      source: { model: { name: "M" }, version: { name: "v1" }, files: [], recipe: { name: "r", text } },
      files: [],
      images: [],
      recipes: ["recipes/r.yaml"],
    });
    expect(card).toContain(`\`\`\`\`yaml\n${text.trimEnd()}\n\`\`\`\``);
  });
});
