import { isRecord } from "./generation-info.js";

/** A ComfyUI API-format graph ("prompt"): node id → class and inputs; inputs are values or links. */
export type ComfyGraph = Record<string, ComfyNode>;
export interface ComfyNode {
  class_type: string;
  inputs: Record<string, unknown>;
}
export type ComfyLink = [string, number];

/** Graph walks follow links; a cycle or a very deep chain stops here instead of hanging. */
export const MAX_LINK_DEPTH = 64;

export function isLink(value: unknown): value is ComfyLink {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    (typeof value[0] === "string" || typeof value[0] === "number") &&
    typeof value[1] === "number"
  );
}

/** Keeps only well-formed nodes of an API graph; undefined when nothing looks like one. */
export function toComfyGraph(value: unknown): ComfyGraph | undefined {
  if (!isRecord(value)) return undefined;
  const graph: ComfyGraph = {};
  for (const [id, node] of Object.entries(value)) {
    if (isRecord(node) && typeof node.class_type === "string") {
      graph[id] = { class_type: node.class_type, inputs: isRecord(node.inputs) ? node.inputs : {} };
    }
  }
  return Object.keys(graph).length > 0 ? graph : undefined;
}

/**
 * Widget names in order for the core nodes, so a UI workflow ("workflow", no "prompt") can be turned
 * into an API graph. `control_after_generate` follows every seed widget in the UI.
 */
const WIDGET_NAMES: Record<string, string[]> = {
  CheckpointLoaderSimple: ["ckpt_name"],
  CheckpointLoader: ["config_name", "ckpt_name"],
  "CheckpointLoader|pysssss": ["ckpt_name"],
  UNETLoader: ["unet_name", "weight_dtype"],
  LoraLoader: ["lora_name", "strength_model", "strength_clip"],
  LoraLoaderModelOnly: ["lora_name", "strength_model"],
  VAELoader: ["vae_name"],
  CLIPSetLastLayer: ["stop_at_clip_layer"],
  CLIPTextEncode: ["text"],
  EmptyLatentImage: ["width", "height", "batch_size"],
  EmptySD3LatentImage: ["width", "height", "batch_size"],
  KSampler: ["seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"],
  KSamplerAdvanced: [
    "add_noise",
    "noise_seed",
    "control_after_generate",
    "steps",
    "cfg",
    "sampler_name",
    "scheduler",
    "start_at_step",
    "end_at_step",
    "return_with_leftover_noise",
  ],
  RandomNoise: ["noise_seed", "control_after_generate"],
  KSamplerSelect: ["sampler_name"],
  BasicScheduler: ["scheduler", "steps", "denoise"],
  CFGGuider: ["cfg"],
};

/** Turns a UI workflow (nodes with widgets_values, links table) into an API graph for the known node types. */
export function workflowToGraph(workflow: unknown): ComfyGraph | undefined {
  if (!isRecord(workflow) || !Array.isArray(workflow.nodes)) return undefined;
  const linkSources = new Map<unknown, ComfyLink>();
  if (Array.isArray(workflow.links)) {
    for (const link of workflow.links) {
      if (Array.isArray(link) && link.length >= 5)
        linkSources.set(link[0], [String(link[1]), Number(link[2])]);
    }
  }
  const graph: ComfyGraph = {};
  for (const node of workflow.nodes) {
    if (!isRecord(node) || typeof node.type !== "string") continue;
    const inputs: Record<string, unknown> = {};
    const widgets = Array.isArray(node.widgets_values) ? [...node.widgets_values] : [];
    const names = WIDGET_NAMES[node.type] ?? [];
    // Early 2023 workflows have no control_after_generate widget after the seed.
    const hasControl = widgets.some(
      (value) => value === "randomize" || value === "fixed" || value === "increment" || value === "decrement",
    );
    let slot = 0;
    for (const name of names) {
      if (name === "control_after_generate" && !hasControl) continue;
      if (slot < widgets.length) inputs[name] = widgets[slot++];
    }
    if (Array.isArray(node.inputs)) {
      for (const input of node.inputs) {
        if (!isRecord(input) || typeof input.name !== "string") continue;
        const source = linkSources.get(input.link);
        // A widget converted to an input keeps its last value in widgets_values; prefer it over a
        // link into a custom node this reader cannot evaluate.
        const widgetValue = inputs[input.name];
        if (source && (widgetValue === undefined || widgetValue === "")) inputs[input.name] = source;
      }
    }
    if (names.length === 0 && widgets.length > 0) inputs.widgets_values = widgets;
    graph[String(node.id)] = { class_type: node.type, inputs };
  }
  return Object.keys(graph).length > 0 ? graph : undefined;
}
