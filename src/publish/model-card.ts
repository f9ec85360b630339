import { stringify } from "yaml";
import { formatBytes } from "../cli/output.js";
import { versionTitle } from "./file-names.js";
import ids from "./hugging-face-ids.json" with { type: "json" };
import type { PublishedFile, PublishedImage } from "./publish-manifest.js";
import type { PublishSource } from "./publish-source.js";
import { recipeTree } from "./recipe-tree.js";

const LICENSES: Readonly<Record<string, string>> = ids.licenses;
const BASE_MODELS: Readonly<Record<string, string>> = ids.baseModels;

/** The Hub license id of a Civitai license name; `other` with the name kept when it has none. */
export function huggingFaceLicense(license: string): { license: string; license_name?: string } {
  const id = LICENSES[license.trim().toLowerCase()];
  if (id) return { license: id };
  const name = license
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9.+]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return { license: "other", license_name: name || "other" };
}

/** The Hub repo of a Civitai base model ("SD 1.5" → stable-diffusion-v1-5/stable-diffusion-v1-5), if it has one. */
export function huggingFaceBaseModel(baseModel: string): string | undefined {
  return BASE_MODELS[baseModel.trim().toLowerCase()];
}

export interface ModelCardInput {
  source: PublishSource;
  files: readonly PublishedFile[];
  images: readonly PublishedImage[];
  /** recipes/… paths, the version's own first. */
  recipes: readonly string[];
}

/**
 * The YAML front matter of the Hub's model card (https://huggingface.co/docs/hub/model-cards).
 * No `library_name`: the folder holds single-file checkpoints, not a diffusers pipeline
 * (model_index.json), so the Hub's "Use in Diffusers" snippet (`from_pretrained`) would fail;
 * `pipeline_tag: text-to-image` still files it under text-to-image. `base_model_relation: merge`
 * for merges, so the Hub's model tree shows it as one.
 */
export function modelCardFrontMatter(input: ModelCardInput): Record<string, unknown> {
  const { model, version } = input.source;
  const front: Record<string, unknown> = {};
  if (version.license) Object.assign(front, huggingFaceLicense(version.license));
  const base = version.baseModel ? huggingFaceBaseModel(version.baseModel) : undefined;
  if (base) {
    front.base_model = base;
    if (isMerge(input.source)) front.base_model_relation = "merge";
  }
  front.pipeline_tag = "text-to-image";
  front.tags = unique([
    "stable-diffusion",
    "text-to-image",
    ...(isMerge(input.source) ? ["merge"] : []),
    ...(model.tags ?? []),
    ...(version.tags ?? []),
  ]);
  const widget = input.images
    .filter((image) => image.generation?.prompt)
    .map((image) => ({
      text: image.generation!.prompt!,
      ...(image.generation!.negativePrompt
        ? { parameters: { negative_prompt: image.generation!.negativePrompt } }
        : {}),
      output: { url: image.name },
    }));
  if (widget.length > 0) front.widget = widget;
  return front;
}

/** README.md: front matter, description, usage, files with hashes, the recipe (tree and YAML), samples. */
export function modelCard(input: ModelCardInput): string {
  const { model, version, recipe, parents } = input.source;
  const out: string[] = [`---\n${stringify(modelCardFrontMatter(input))}---`, ""];
  out.push(`# ${versionTitle(model.name, version.name)}`, "");
  if (input.images.some((image) => image.generation?.prompt)) out.push("<Gallery />", "");
  if (version.description) out.push(version.description.trim(), "");

  const usage = [
    version.baseModel ? `- Base model: ${version.baseModel}` : "",
    version.trainedWords?.length ? `- Trigger words: ${version.trainedWords.map(code).join(", ")}` : "",
    version.clipSkip ? `- Clip skip: ${version.clipSkip}` : "",
    version.vae ? `- VAE: ${version.vae.name}` : "",
    version.negativeEmbeddings?.length
      ? `- Negative embeddings: ${version.negativeEmbeddings.map(code).join(", ")}`
      : "",
  ].filter(Boolean);
  if (usage.length > 0 || version.usage) {
    out.push("## Usage", "", ...usage);
    if (version.usage) out.push("", version.usage.trim());
    out.push("");
  }

  out.push("## Files", "", "| File | Type | Format | Precision | Size | SHA256 | AutoV2 | AutoV3 |");
  out.push("|---|---|---|---|---|---|---|---|");
  for (const file of input.files) {
    const meta = file.metadata;
    out.push(
      `| [${cell(file.name)}](${encodeURI(file.name)}) | ${cell(file.type ?? "")} | ${cell(meta.format ?? "")} | ${cell(
        [meta.fp, meta.size].filter(Boolean).join(" "),
      )} | ${formatBytes(file.sizeBytes)} | \`${file.hashes.SHA256}\` | \`${file.hashes.AutoV2}\` | \`${file.hashes.AutoV3}\` |`,
    );
  }
  out.push("");

  if (recipe) {
    out.push("## Recipe", "");
    const tree = recipeTree(recipe.text, recipe.name);
    if (tree) out.push(fenced("text", tree), "");
    out.push(`Replay it with \`gyoza merge ${input.recipes[0] ?? "recipe.yaml"}\`:`, "");
    out.push(fenced("yaml", recipe.text.trimEnd()), "");
  }
  if (parents?.length) {
    out.push("## Made from", "");
    for (const parent of parents) out.push(`- ${parent.name}`);
    out.push("");
  }
  if (input.recipes.length > 1) {
    out.push("Recipes of this version and of its parents: ", "");
    for (const path of input.recipes) out.push(`- [${cell(path)}](${encodeURI(path)})`);
    out.push("");
  }
  if (input.images.length > 0) {
    out.push("## Samples", "", "Generation metadata is kept inside each image.", "");
    for (const image of input.images) {
      out.push(
        `![${cell(image.generation?.prompt?.split("\n")[0] ?? image.name)}](${encodeURI(image.name)})`,
      );
    }
    out.push("");
  }
  out.push("---", "", "Laid out by `gyoza publish`.", "");
  return out.join("\n");
}

function isMerge(source: PublishSource): boolean {
  return source.model.checkpointType?.toLowerCase() === "merge" || Boolean(source.recipe);
}

function unique(values: readonly string[]): string[] {
  const seen = new Set<string>();
  return values.filter((value) => {
    const key = value.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Text safe inside a Markdown table cell or link text. */
function cell(text: string): string {
  return text.replace(/[|[\]\\]/g, (c) => `\\${c}`).replace(/\r?\n/g, " ");
}

function code(text: string): string {
  return `\`${text.replace(/`/g, "'")}\``;
}

/** A code block whose fence is longer than any backtick run inside (a recipe's text is untrusted). */
function fenced(language: string, text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((run) => run[0].length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return `${fence}${language}\n${text}\n${fence}`;
}
