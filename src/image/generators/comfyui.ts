import { type ComfyGraph, type ComfyNode, isLink, MAX_LINK_DEPTH } from "./comfyui-graph.js";
import { hiresPass } from "./comfyui-hires.js";
import {
  addResource,
  embeddingsInPrompt,
  emptyInfo,
  type GenerationInfo,
  namedRef,
  toNumber,
  toSeed,
  toText,
} from "./generation-info.js";

const TEXT_INPUTS = [
  "text",
  "text_g",
  "prompt",
  "t5xxl",
  "clip_l",
  "string",
  "value",
  "text_positive",
  "positive_prompt",
];
const CONDITIONING_INPUTS = [
  "conditioning",
  "conditioning_1",
  "conditioning_2",
  "conditioning_to",
  "conditioning_from",
];
const MODEL_NAME_INPUTS = ["ckpt_name", "unet_name", "model_name"];

export interface SamplerSettings {
  node: string;
  seed?: number | string;
  steps?: number;
  cfg?: number;
  sampler?: string;
  scheduler?: string;
  denoise?: number;
  positive?: string;
  negative?: string;
}

export class GraphReader {
  constructor(readonly graph: ComfyGraph) {}

  node(link: unknown): ComfyNode | undefined {
    return isLink(link) ? this.graph[String(link[0])] : undefined;
  }

  /** An input's value, following links into primitive/seed/string nodes. */
  value(node: ComfyNode | undefined, name: string, depth = 0): unknown {
    const value = node?.inputs[name];
    if (!isLink(value) || depth > MAX_LINK_DEPTH) return value;
    const source = this.node(value);
    if (!source) return undefined;
    if (name in source.inputs) return this.value(source, name, depth + 1);
    const scalar = Object.values(source.inputs).find(
      (input) => typeof input === "number" || typeof input === "string",
    );
    return scalar;
  }

  /** The prompt text feeding a conditioning input, through combine/controlnet nodes. */
  text(link: unknown, depth = 0): string | undefined {
    const node = this.node(link);
    if (!node || depth > MAX_LINK_DEPTH) return undefined;
    for (const name of TEXT_INPUTS) {
      const value = this.value(node, name);
      if (typeof value === "string") return value;
    }
    const side = isLink(link) && link[1] === 1 ? "negative" : "positive";
    const texts: string[] = [];
    for (const name of [side, ...CONDITIONING_INPUTS]) {
      const text = this.text(node.inputs[name], depth + 1);
      if (text !== undefined && !texts.includes(text)) texts.push(text);
    }
    return texts.length > 0 ? texts.join("\n") : undefined;
  }

  /** Walks back from a node's input through `model`/`samples`/`latent_image` links to the first node matching. */
  find(
    link: unknown,
    inputs: string[],
    match: (node: ComfyNode) => boolean,
    depth = 0,
  ): ComfyNode | undefined {
    const node = this.node(link);
    if (!node || depth > MAX_LINK_DEPTH) return undefined;
    if (match(node)) return node;
    for (const name of inputs) {
      const found = this.find(node.inputs[name], inputs, match, depth + 1);
      if (found) return found;
    }
    return undefined;
  }

  nodesOfType(test: (classType: string) => boolean): [string, ComfyNode][] {
    return Object.entries(this.graph)
      .filter(([, node]) => test(node.class_type))
      .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
  }

  sampler(id: string, node: ComfyNode): SamplerSettings {
    const guider = this.node(node.inputs.guider);
    const settings: SamplerSettings = {
      node: id,
      seed: toSeed(
        this.value(node, "seed") ??
          this.value(node, "noise_seed") ??
          this.value(this.node(node.inputs.noise), "noise_seed"),
      ),
      steps: toNumber(this.value(node, "steps") ?? this.value(this.node(node.inputs.sigmas), "steps")),
      cfg: toNumber(this.value(node, "cfg") ?? this.value(guider, "cfg")),
      sampler: toText(
        this.value(node, "sampler_name") ?? this.value(this.node(node.inputs.sampler), "sampler_name"),
      ),
      scheduler: toText(
        this.value(node, "scheduler") ?? this.value(this.node(node.inputs.sigmas), "scheduler"),
      ),
      denoise: toNumber(this.value(node, "denoise") ?? this.value(this.node(node.inputs.sigmas), "denoise")),
      positive: this.text(node.inputs.positive ?? guider?.inputs.positive ?? guider?.inputs.conditioning),
      negative: this.text(node.inputs.negative ?? guider?.inputs.negative),
    };
    return settings;
  }
}

function isSamplerNode(node: ComfyNode): boolean {
  const inputs = node.inputs;
  if (/save|preview/i.test(node.class_type)) return false; // metadata-saving nodes mirror sampler inputs
  return (
    ("steps" in inputs && ("sampler_name" in inputs || "positive" in inputs)) ||
    ("guider" in inputs && "sigmas" in inputs) ||
    (/sampler/i.test(node.class_type) && "positive" in inputs)
  );
}

/** Every sampling pass in node-id order, and the main one. */
function samplerPasses(reader: GraphReader): { settings: SamplerSettings[]; main?: SamplerSettings } {
  const samplers = reader.nodesOfType(() => true).filter(([, node]) => isSamplerNode(node));
  const settings = samplers.map(([id, node]) => reader.sampler(id, node));
  // The first full-denoise pass holds the seed, size and prompt a user would reuse (later passes are hires/refiner).
  const main = settings.find((s) => s.denoise === undefined || s.denoise >= 1) ?? settings[0];
  return { settings, main };
}

/** The seed the graph's main sampler ran with, and which node holds it (for saying where a seed came from). */
export function seedTheGraphRan(
  graph: ComfyGraph,
): { seed: number | string; node: string; classType: string } | undefined {
  const { main } = samplerPasses(new GraphReader(graph));
  if (main?.seed === undefined) return undefined;
  return { seed: main.seed, node: main.node, classType: graph[main.node]!.class_type };
}

/** Prompt, sampler settings, checkpoints, LoRAs, VAE, clip skip, size and hires pass from a ComfyUI API graph. */
export function infoFromComfyGraph(graph: ComfyGraph, raw: Record<string, string>): GenerationInfo {
  const reader = new GraphReader(graph);
  const info = emptyInfo("comfyui", raw);
  const { settings, main } = samplerPasses(reader);
  if (main) {
    info.prompt = main.positive;
    info.negativePrompt = main.negative;
    info.seed = main.seed;
    info.steps = main.steps;
    info.cfgScale = main.cfg;
    info.sampler = main.sampler;
    info.scheduler = main.scheduler;
    const mainNode = graph[main.node]!;
    const latent = reader.find(
      mainNode.inputs.latent_image,
      ["samples", "latent", "latent_image", "pixels"],
      (node) =>
        toNumber(reader.value(node, "width")) !== undefined &&
        toNumber(reader.value(node, "height")) !== undefined,
    );
    if (latent) {
      info.width = toNumber(reader.value(latent, "width"));
      info.height = toNumber(reader.value(latent, "height"));
    }
    const guider = reader.node(mainNode.inputs.guider);
    const modelLink = mainNode.inputs.model ?? guider?.inputs.model;
    const checkpoint = reader.find(modelLink, ["model", "unet"], (node) =>
      MODEL_NAME_INPUTS.some((name) => typeof reader.value(node, name) === "string"),
    );
    const name =
      checkpoint &&
      MODEL_NAME_INPUTS.map((input) => reader.value(checkpoint, input)).find((v) => typeof v === "string");
    if (typeof name === "string") info.model = namedRef(name);
    info.hires = hiresPass(reader, main, settings, info.width);
  }
  const checkpoints = reader
    .nodesOfType((type) => /checkpoint|unet/i.test(type))
    .map(([, node]) =>
      MODEL_NAME_INPUTS.map((input) => reader.value(node, input)).find((v) => typeof v === "string"),
    )
    .filter((name): name is string => typeof name === "string");
  if (!info.model && checkpoints[0]) info.model = namedRef(checkpoints[0]);
  const files = modelFilesIn(graph);
  if (!info.model && files.length > 0) info.extra.modelFiles = files;
  if (new Set(checkpoints).size > 1) info.extra.checkpoints = [...new Set(checkpoints)];
  for (const [, node] of reader.nodesOfType((type) => /lora/i.test(type))) {
    const name = toText(reader.value(node, "lora_name"));
    if (name) addResource(info.loras, namedRef(name, toNumber(reader.value(node, "strength_model"))));
  }
  const vae = reader.nodesOfType((type) => type === "VAELoader")[0];
  const vaeName = vae && toText(reader.value(vae[1], "vae_name"));
  if (vaeName) info.vae = namedRef(vaeName);
  const clipSkip = reader.nodesOfType((type) => type === "CLIPSetLastLayer")[0];
  const stop = clipSkip && toNumber(reader.value(clipSkip[1], "stop_at_clip_layer"));
  if (stop !== undefined && stop < 0) info.clipSkip = -stop;
  for (const text of settings.flatMap((s) => [s.positive, s.negative])) {
    for (const embedding of embeddingsInPrompt(text)) addResource(info.embeddings, embedding);
  }
  if (settings.length > 1) info.extra.samplers = settings;
  for (const key of Object.keys(info) as (keyof GenerationInfo)[])
    if (info[key] === undefined) delete info[key];
  return info;
}

const MODEL_FILE_PATTERN = /\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$/i;

/** Model-like file names anywhere in the graph, for custom nodes whose inputs this reader does not know. */
function modelFilesIn(graph: ComfyGraph): string[] {
  const files = new Set<string>();
  for (const node of Object.values(graph)) {
    for (const value of Object.values(node.inputs).flat()) {
      if (typeof value === "string" && MODEL_FILE_PATTERN.test(value)) files.add(value);
    }
  }
  return [...files];
}
