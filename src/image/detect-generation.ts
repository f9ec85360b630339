import { infoFromInfotext } from "./generators/a1111.js";
import { infoFromComfyGraph } from "./generators/comfyui.js";
import { type ComfyGraph, toComfyGraph, workflowToGraph } from "./generators/comfyui-graph.js";
import type { GenerationInfo, GeneratorId } from "./generators/generation-info.js";
import {
  infoFromInvokeAiDream,
  infoFromInvokeAiLegacy,
  infoFromInvokeAiMetadata,
} from "./generators/invokeai.js";
import {
  infoFromFooocus,
  infoFromGradioJson,
  infoFromRuinedFooocus,
  infoFromStabilityMatrix,
  infoFromSwarmUi,
} from "./generators/json-generators.js";
import { parseJsonObject, parseLenientJson } from "./generators/lenient-json.js";
import { infoFromNovelAi } from "./generators/novelai.js";
import {
  drawThingsJson,
  EASY_DIFFUSION_MARKERS,
  infoFromDrawThings,
  infoFromEasyDiffusion,
} from "./generators/other-generators.js";
import { takeSeedTheGraphRan } from "./generators/random-seed.js";
import { civitaiExtras, infoFromCivitaiGraph, infoFromTensorArtGraph } from "./generators/site-graphs.js";
import { countA1111Pairs } from "./infotext.js";
import { unwrapTextBundle } from "./text-bundle.js";

/** ComfyUI's `prompt`/`workflow`, wherever the saving node put them (PNG text, EXIF Make/Model/ImageDescription, UserComment JSON). */
export function findComfyGraphs(chunks: Record<string, string>): { prompt?: unknown; workflow?: unknown } {
  const found: { prompt?: unknown; workflow?: unknown } = {};
  const take = (kind: "prompt" | "workflow", value: unknown) => {
    if (found[kind] === undefined && value !== undefined) found[kind] = value;
  };
  if (chunks.prompt !== undefined) take("prompt", parseLenientJson(chunks.prompt));
  if (chunks.workflow !== undefined) take("workflow", parseLenientJson(chunks.workflow));
  for (const key of ["exif_model", "exif_make", "exif_image_description"]) {
    const match = /^\s*(prompt|workflow)\s*:\s*/i.exec(chunks[key] ?? "");
    if (match)
      take(
        match[1]!.toLowerCase() as "prompt" | "workflow",
        parseLenientJson(chunks[key]!.slice(match[0].length)),
      );
  }
  const comment = parseJsonObject(chunks.exif_user_comment);
  if (comment && ("prompt" in comment || "workflow" in comment)) {
    for (const kind of ["prompt", "workflow"] as const) {
      const value = comment[kind];
      take(kind, typeof value === "string" ? parseLenientJson(value) : value);
    }
  } else if (toComfyGraph(comment)) take("prompt", comment); // Civitai's generator: the API graph is the whole UserComment
  return found;
}

/** The API graph (or one built from the UI workflow), and the `prompt` object as found, top-level extras included. */
function comfyGraph(chunks: Record<string, string>): { graph?: ComfyGraph; prompt?: unknown } {
  const { prompt, workflow } = findComfyGraphs(chunks);
  return { graph: toComfyGraph(prompt) ?? workflowToGraph(workflow), prompt };
}

/** The infotext among the texts: `parameters`, UserComment, or a JPEG/GIF comment, when its last line holds ≥3 pairs. */
function findInfotext(chunks: Record<string, string>): { key: string; text: string } | undefined {
  for (const key of ["parameters", "exif_user_comment", "jpeg_comment", "Comment"]) {
    const text = chunks[key];
    if (text === undefined || text.trimStart().startsWith("{")) continue;
    const lines = text.trim().split("\n");
    if (countA1111Pairs(lines[lines.length - 1]!) >= 3) return { key, text };
  }
  return undefined;
}

/**
 * Who wrote an infotext: A1111 and its forks by default; Civitai's generator adds its resource list;
 * ComfyUI save nodes (Image Saver) and Fooocus' a1111 scheme say so in `Version`.
 */
function infotextWriter(infotext: string): GeneratorId {
  if (/(^|, )Civitai (resources|metadata): /m.test(infotext)) return "civitai";
  const version = /(?:^|[,\n])\s*Version: ([^,\n]+)/.exec(infotext)?.[1]?.trim() ?? "";
  if (version.startsWith("ComfyUI")) return "comfyui";
  if (version.startsWith("Fooocus")) return "fooocus";
  return "a1111";
}

/** Fills fields `primary` lacks from `secondary` (e.g. a ComfyUI graph plus an A1111-style `parameters`). */
function fillFrom(primary: GenerationInfo, secondary: GenerationInfo | undefined): GenerationInfo {
  if (!secondary) return primary;
  for (const key of [
    "prompt",
    "negativePrompt",
    "seed",
    "steps",
    "sampler",
    "scheduler",
    "cfgScale",
    "width",
    "height",
    "clipSkip",
  ] as const) {
    if (primary[key] === undefined && secondary[key] !== undefined)
      (primary as unknown as Record<string, unknown>)[key] = secondary[key];
  }
  if (secondary.model)
    primary.model = {
      ...secondary.model,
      ...primary.model,
      hash: primary.model?.hash ?? secondary.model.hash,
    };
  if (secondary.vae)
    primary.vae = { ...secondary.vae, ...primary.vae, hash: primary.vae?.hash ?? secondary.vae.hash };
  for (const lora of secondary.loras)
    if (!primary.loras.some((l) => l.name === lora.name)) primary.loras.push(lora);
  for (const e of secondary.embeddings)
    if (!primary.embeddings.some((x) => x.name === e.name)) primary.embeddings.push(e);
  return primary;
}

/**
 * Recognises which front end wrote an image's metadata and parses it into the common shape;
 * undefined when the texts hold no generation metadata (a GIMP comment, a screenshot's UserComment).
 */
export function detectGeneration(texts: Record<string, string>): GenerationInfo | undefined {
  // NovelAI's WebP (and gyoza's own copies into EXIF) bundle the PNG fields as JSON in the UserComment.
  const bundle = unwrapTextBundle(texts.exif_user_comment);
  const chunks = bundle ? { ...bundle, ...texts } : texts;
  const parametersJson = parseJsonObject(chunks.parameters);
  const commentJson = parseJsonObject(chunks.exif_user_comment);
  const found = findInfotext(chunks);
  const infotext = found?.text;

  if (chunks["parameters-json"] !== undefined || chunks.smproj !== undefined) {
    // The ComfyUI graph is what ran (sampler/scheduler as ComfyUI names them); the JSON adds the model hash.
    const { graph } = comfyGraph(chunks);
    const fromJson = infoFromStabilityMatrix(chunks["parameters-json"] ?? "{}", texts);
    const fromInfotext = infotext ? infoFromInfotext(infotext, "stability-matrix", texts) : undefined;
    if (!graph) return fillFrom(fromJson, fromInfotext);
    // The prompts come from the JSON: the graph holds them after Stability Matrix rewrote its own syntax.
    const fromGraph = { ...infoFromComfyGraph(graph, texts), generator: "stability-matrix" as const };
    const info = fillFrom(
      { ...fromGraph, prompt: fromJson.prompt, negativePrompt: fromJson.negativePrompt },
      fromJson,
    );
    return takeSeedTheGraphRan(fillFrom(info, fromInfotext), graph, {
      "parameters-json": fromJson.seed,
      ...(found ? { [found.key]: fromInfotext?.seed } : {}),
    });
  }
  if (parametersJson?.sui_image_params !== undefined) return infoFromSwarmUi(chunks.parameters!, texts);
  if (commentJson?.sui_image_params !== undefined) return infoFromSwarmUi(chunks.exif_user_comment!, texts);
  if (chunks.invokeai_metadata !== undefined)
    return infoFromInvokeAiMetadata(chunks.invokeai_metadata, texts);
  if (chunks.Dream !== undefined) return infoFromInvokeAiDream(chunks.Dream, texts);
  if (chunks["sd-metadata"] !== undefined) return infoFromInvokeAiLegacy(chunks["sd-metadata"], texts);
  if (EASY_DIFFUSION_MARKERS.some((key) => key in chunks)) return infoFromEasyDiffusion(chunks, texts);
  if (commentJson && EASY_DIFFUSION_MARKERS.some((key) => key in commentJson))
    return infoFromEasyDiffusion(commentJson, texts);
  const drawThings = drawThingsJson(chunks["XML:com.adobe.xmp"] ?? chunks.xmp);
  if (drawThings) return infoFromDrawThings(drawThings, texts);
  if (chunks.fooocus_scheme !== undefined || (parametersJson && "full_prompt" in parametersJson)) {
    if (parametersJson) return infoFromFooocus(chunks.parameters!, texts);
    if (infotext) return infoFromInfotext(infotext, "fooocus", texts);
  }
  if (/^NovelAI/i.test(chunks.Software ?? chunks.exif_software ?? "")) return infoFromNovelAi(chunks);
  const { graph, prompt } = comfyGraph(chunks);
  // Civitai's on-site generator marks its graph (resource-stack loaders, extra.airs, extraMetadata); TensorArt writes `generation_data`.
  const civitai = civitaiExtras(prompt);
  if (graph && civitai) return infoFromCivitaiGraph(graph, civitai, texts);
  const tensorArt = parseJsonObject(chunks.generation_data?.replace(/\0+$/, ""));
  if (graph && tensorArt) return infoFromTensorArtGraph(graph, tensorArt, texts);
  if (graph) {
    const fromInfotext = infotext ? infoFromInfotext(infotext, "comfyui", texts) : undefined;
    return takeSeedTheGraphRan(
      fillFrom(infoFromComfyGraph(graph, texts), fromInfotext),
      graph,
      found ? { [found.key]: fromInfotext?.seed } : {},
    );
  }
  if (infotext) return infoFromInfotext(infotext, infotextWriter(infotext), texts);
  if (parametersJson?.software === "RuinedFooocus") return infoFromRuinedFooocus(parametersJson, texts);
  if (parametersJson && ("prompt" in parametersJson || "negative_prompt" in parametersJson)) {
    return infoFromGradioJson(chunks.parameters!, texts);
  }
  return undefined;
}

/**
 * Generation metadata recovered from stealth pnginfo: A1111 hides its infotext, NovelAI a JSON object
 * of its PNG text fields.
 */
export function detectHiddenGeneration(text: string): GenerationInfo | undefined {
  return detectGeneration(unwrapTextBundle(text) ?? { parameters: text });
}
