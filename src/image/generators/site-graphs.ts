import { infoFromComfyGraph } from "./comfyui.js";
import type { ComfyGraph } from "./comfyui-graph.js";
import {
  extraExcept,
  type GenerationInfo,
  type GeneratorId,
  isRecord,
  toNumber,
  toSeed,
  toText,
} from "./generation-info.js";
import { parseJsonObject } from "./lenient-json.js";
import { takeSeedTheGraphRan } from "./random-seed.js";

/** Node ids Civitai's on-site generator gives its checkpoint and LoRA loaders. */
const RESOURCE_STACK_NODE = /^resource-stack(-\d+)?$/;

/** The keys of a site's side JSON that `sideFields` maps; the others are kept in `extra` as written. */
const SIDE_FIELD_KEYS = [
  "prompt",
  "negativePrompt",
  "seed",
  "steps",
  "cfgScale",
  "sampler",
  "width",
  "height",
  "clipSkip",
  "baseModel",
];

/** What Civitai's generator puts beside the nodes at the top level of its API graph. */
export interface CivitaiExtras {
  /** `extraMetadata`, JSON text: the settings as typed on the site, its resource list, workflow id. */
  extraMetadata?: Record<string, unknown>;
  /** `extra.airs`: every resource the graph uses, as AIRs. */
  airs?: string[];
}

/**
 * Civitai's additions when `prompt` (an API graph object as found, top-level keys and all) comes from
 * its on-site generator: loaders named `resource-stack…`, `extra.airs`, or `extraMetadata`. The graph
 * travels as the JPEG's whole UserComment, or as a PNG `prompt` chunk after a copy.
 */
export function civitaiExtras(prompt: unknown): CivitaiExtras | undefined {
  if (!isRecord(prompt)) return undefined;
  const extraMetadata = isRecord(prompt.extraMetadata)
    ? prompt.extraMetadata
    : parseJsonObject(toText(prompt.extraMetadata));
  const airs =
    isRecord(prompt.extra) && Array.isArray(prompt.extra.airs)
      ? prompt.extra.airs.filter((air): air is string => typeof air === "string")
      : undefined;
  const stack = Object.keys(prompt).some((id) => RESOURCE_STACK_NODE.test(id));
  if (!extraMetadata && !airs && !stack) return undefined;
  return { ...(extraMetadata ? { extraMetadata } : {}), ...(airs ? { airs } : {}) };
}

/**
 * Civitai's on-site generator: the graph is what ran (its loaders named by AIR, the hires pass);
 * `extraMetadata` holds the prompts and settings as typed on the site, which win where both say.
 */
export function infoFromCivitaiGraph(
  graph: ComfyGraph,
  extras: CivitaiExtras,
  raw: Record<string, string>,
): GenerationInfo {
  const info = withSideFields(graph, extras.extraMetadata ?? {}, "extraMetadata", "civitai", raw);
  if (extras.airs) info.extra.airs = extras.airs;
  return info;
}

/** Tensor.Art: its `generation_data` JSON beside the graph holds the prompts as typed and the model hash. */
export function infoFromTensorArtGraph(
  graph: ComfyGraph,
  generationData: Record<string, unknown>,
  raw: Record<string, string>,
): GenerationInfo {
  return withSideFields(graph, generationData, "generation_data", "tensorart", raw);
}

function withSideFields(
  graph: ComfyGraph,
  side: Record<string, unknown>,
  sideKey: string,
  generator: GeneratorId,
  raw: Record<string, string>,
): GenerationInfo {
  const info: GenerationInfo = { ...infoFromComfyGraph(graph, raw), ...sideFields(side), generator };
  info.extra = { ...info.extra };
  extraExcept(info, side, SIDE_FIELD_KEYS);
  return takeSeedTheGraphRan(info, graph, { [sideKey]: side.seed });
}

/** The side JSON's fields that have a place in GenerationInfo (both sites use the same names). */
function sideFields(meta: Record<string, unknown>): Partial<GenerationInfo> {
  const base = isRecord(meta.baseModel) ? meta.baseModel : undefined;
  const fields: Partial<GenerationInfo> = {
    prompt: toText(meta.prompt),
    negativePrompt: toText(meta.negativePrompt),
    seed: toSeed(meta.seed),
    steps: toNumber(meta.steps),
    cfgScale: toNumber(meta.cfgScale),
    sampler: toText(meta.sampler),
    width: toNumber(meta.width),
    height: toNumber(meta.height),
    clipSkip: toNumber(meta.clipSkip),
    model: base ? { name: toText(base.modelFileName), hash: toText(base.hash) } : undefined,
  };
  for (const key of Object.keys(fields) as (keyof GenerationInfo)[])
    if (fields[key] === undefined) delete fields[key];
  return fields;
}
