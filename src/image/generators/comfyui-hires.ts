import type { GraphReader, SamplerSettings } from "./comfyui.js";
import { type ComfyNode, MAX_LINK_DEPTH } from "./comfyui-graph.js";
import { type HiresSettings, toNumber, toText } from "./generation-info.js";

/** Inputs an image or latent flows through between two sampling passes (decode, upscale, resize, encode). */
const IMAGE_INPUTS = ["samples", "latent", "latent_image", "pixels", "image", "images"];

/**
 * The hires pass of a graph: a later sampler with denoise below 1 whose latent comes, through
 * upscale and resize nodes, from the main sampler's output (ComfyUI's "hires fix" examples,
 * Civitai's generator). The upscale factor is the resize node's `scale_by`, or the new size over
 * the first pass's when the graph states a size; an upscale model's own factor is not in the graph.
 */
export function hiresPass(
  reader: GraphReader,
  main: SamplerSettings,
  passes: readonly SamplerSettings[],
  baseWidth: number | undefined,
): HiresSettings | undefined {
  for (const pass of passes) {
    if (pass === main || pass.denoise === undefined || pass.denoise >= 1) continue;
    const between = nodesBetween(reader, reader.graph[pass.node]!.inputs.latent_image, main.node, 0);
    if (!between) continue;
    const hires: HiresSettings = {};
    let upscaleModel = false;
    // Walked from the hires sampler back to the main one: the node nearest the main pass comes last.
    for (const node of between) {
      const modelLoader = reader.node(node.inputs.upscale_model);
      const model = modelLoader && toText(reader.value(modelLoader, "model_name"));
      if (model !== undefined) {
        hires.upscaler = model;
        upscaleModel = true;
      }
      const method = toText(reader.value(node, "upscale_method"));
      if (method !== undefined && !upscaleModel) hires.upscaler ??= method;
      const scale = toNumber(reader.value(node, "scale_by"));
      if (scale !== undefined) hires.upscale = (hires.upscale ?? 1) * scale;
      const width = toNumber(reader.value(node, "width"));
      const height = toNumber(reader.value(node, "height"));
      if (width !== undefined && height !== undefined && hires.width === undefined) {
        hires.width = width;
        hires.height = height;
      }
    }
    if (upscaleModel && hires.width === undefined) delete hires.upscale;
    if (hires.width !== undefined && baseWidth) hires.upscale = hires.width / baseWidth;
    hires.steps = pass.steps;
    hires.denoise = pass.denoise;
    for (const key of Object.keys(hires) as (keyof HiresSettings)[])
      if (hires[key] === undefined) delete hires[key];
    return hires;
  }
  return undefined;
}

/** The nodes on an image/latent path from `link` back to node `target` (excluded), or undefined when there is none. */
function nodesBetween(
  reader: GraphReader,
  link: unknown,
  target: string,
  depth: number,
): ComfyNode[] | undefined {
  const node = reader.node(link);
  if (!node || depth > MAX_LINK_DEPTH) return undefined;
  if (String((link as [unknown, number])[0]) === target) return [];
  for (const name of IMAGE_INPUTS) {
    const rest = nodesBetween(reader, node.inputs[name], target, depth + 1);
    if (rest) return [node, ...rest];
  }
  return undefined;
}
