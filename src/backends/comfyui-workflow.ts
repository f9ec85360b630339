import { GyozaError } from "../errors.js";
import type { ComfyGraph } from "./comfyui-client.js";

/**
 * ComfyUI's UI-format ("workflow") graph for an API graph gyoza built. ComfyUI's SaveImage writes
 * the API graph as the `prompt` chunk and each key of `extra_data.extra_pnginfo` as a chunk of
 * that name; the browser front end sends the UI graph there as `workflow`. Only that chunk loads
 * back into ComfyUI's canvas when an image is dropped on it, so gyoza sends one of its own: nodes
 * with their slots and widget values in the order ComfyUI's node definitions declare them, and the
 * links table `[id, from node, from slot, to node, to slot, type]`.
 */
export interface ComfyWorkflow {
  last_node_id: number;
  last_link_id: number;
  nodes: ComfyWorkflowNode[];
  links: [number, number, number, number, number, string][];
  groups: never[];
  config: Record<string, never>;
  extra: Record<string, unknown>;
  version: 0.4;
}

export interface ComfyWorkflowNode {
  id: number;
  type: string;
  pos: [number, number];
  size: [number, number];
  flags: Record<string, never>;
  order: number;
  mode: 0;
  inputs: { name: string; type: string; link: number | null }[];
  outputs: { name: string; type: string; links: number[] | null; slot_index: number }[];
  properties: { "Node name for S&R": string };
  widgets_values: unknown[];
}

/** A core node as ComfyUI defines it: linked inputs, outputs, then the widgets in declaration order. */
interface NodeShape {
  inputs: [name: string, type: string][];
  outputs: [name: string, type: string][];
  /** Widget input names; `control_after_generate` is the front end's widget after every seed. */
  widgets: string[];
  size: [number, number];
}

const NODE_SHAPES: Record<string, NodeShape> = {
  CheckpointLoaderSimple: {
    inputs: [],
    outputs: [
      ["MODEL", "MODEL"],
      ["CLIP", "CLIP"],
      ["VAE", "VAE"],
    ],
    widgets: ["ckpt_name"],
    size: [315, 98],
  },
  LoraLoader: {
    inputs: [
      ["model", "MODEL"],
      ["clip", "CLIP"],
    ],
    outputs: [
      ["MODEL", "MODEL"],
      ["CLIP", "CLIP"],
    ],
    widgets: ["lora_name", "strength_model", "strength_clip"],
    size: [315, 126],
  },
  CLIPSetLastLayer: {
    inputs: [["clip", "CLIP"]],
    outputs: [["CLIP", "CLIP"]],
    widgets: ["stop_at_clip_layer"],
    size: [315, 58],
  },
  CLIPTextEncode: {
    inputs: [["clip", "CLIP"]],
    outputs: [["CONDITIONING", "CONDITIONING"]],
    widgets: ["text"],
    size: [400, 200],
  },
  EmptyLatentImage: {
    inputs: [],
    outputs: [["LATENT", "LATENT"]],
    widgets: ["width", "height", "batch_size"],
    size: [315, 106],
  },
  KSampler: {
    inputs: [
      ["model", "MODEL"],
      ["positive", "CONDITIONING"],
      ["negative", "CONDITIONING"],
      ["latent_image", "LATENT"],
    ],
    outputs: [["LATENT", "LATENT"]],
    widgets: ["seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"],
    size: [315, 262],
  },
  VAELoader: {
    inputs: [],
    outputs: [["VAE", "VAE"]],
    widgets: ["vae_name"],
    size: [315, 58],
  },
  VAEDecode: {
    inputs: [
      ["samples", "LATENT"],
      ["vae", "VAE"],
    ],
    outputs: [["IMAGE", "IMAGE"]],
    widgets: [],
    size: [210, 46],
  },
  SaveImage: {
    inputs: [["images", "IMAGE"]],
    outputs: [],
    widgets: ["filename_prefix"],
    size: [315, 270],
  },
};

function isLink(value: unknown): value is [string, number] {
  return Array.isArray(value) && value.length === 2 && typeof value[1] === "number";
}

/**
 * The UI workflow of an API graph made of the core txt2img nodes (what `buildComfyGraph` makes).
 * Node ids stay the API graph's ids, so `prompt` and `workflow` name the same nodes; seeds are
 * "fixed" so a reload in ComfyUI makes the same image. Nodes sit in columns by their depth in the
 * graph, left to right, the way a person would lay them out.
 */
export function buildComfyWorkflow(graph: ComfyGraph): ComfyWorkflow {
  const ids = Object.keys(graph);
  for (const id of ids) {
    if (!/^\d+$/.test(id) || !(graph[id]!.class_type in NODE_SHAPES)) {
      throw new GyozaError(
        "usage",
        `cannot describe node ${id} (${graph[id]!.class_type}) as a ComfyUI workflow: only the core txt2img nodes are known`,
      );
    }
  }
  // depth = longest chain of links leading to a node: its column
  const depth = new Map<string, number>();
  const depthOf = (id: string, seen: Set<string>): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (seen.has(id)) throw new GyozaError("usage", `the ComfyUI graph has a cycle through node ${id}`);
    seen.add(id);
    const sources: string[] = [];
    for (const [name, value] of Object.entries(graph[id]!.inputs)) {
      if (!isLink(value)) continue;
      if (!graph[String(value[0])]) {
        throw new GyozaError(
          "usage",
          `node ${id} (${graph[id]!.class_type}) input '${name}' links to ${String(value[0])}:${value[1]}, which is not in the graph`,
        );
      }
      sources.push(String(value[0]));
    }
    const value = sources.length === 0 ? 0 : 1 + Math.max(...sources.map((from) => depthOf(from, seen)));
    depth.set(id, value);
    return value;
  };
  for (const id of ids) depthOf(id, new Set());
  const byNumber = (a: string, b: string) => Number(a) - Number(b);
  const executionOrder = [...ids].sort((a, b) => depth.get(a)! - depth.get(b)! || byNumber(a, b));

  const links: ComfyWorkflow["links"] = [];
  const nodes = new Map<string, ComfyWorkflowNode>();
  const rowsUsed = new Map<number, number>();
  for (const [order, id] of executionOrder.entries()) {
    const node = graph[id]!;
    const shape = NODE_SHAPES[node.class_type]!;
    const column = depth.get(id)!;
    const y = rowsUsed.get(column) ?? 0;
    rowsUsed.set(column, y + shape.size[1] + 60);
    nodes.set(id, {
      id: Number(id),
      type: node.class_type,
      pos: [column * 420, y],
      size: shape.size,
      flags: {},
      order,
      mode: 0,
      inputs: [],
      outputs: shape.outputs.map(([name, type], slot) => ({ name, type, links: null, slot_index: slot })),
      properties: { "Node name for S&R": node.class_type },
      widgets_values: shape.widgets.map((name) =>
        name === "control_after_generate" ? "fixed" : node.inputs[name],
      ),
    });
  }
  // links in the order their targets run, each slot in the node's declared input order
  for (const id of executionOrder) {
    const target = nodes.get(id)!;
    const shape = NODE_SHAPES[target.type]!;
    for (const [toSlot, [name, type]] of shape.inputs.entries()) {
      const value = graph[id]!.inputs[name];
      if (!isLink(value)) {
        target.inputs.push({ name, type, link: null });
        continue;
      }
      const source = nodes.get(String(value[0]));
      const output = source?.outputs[value[1]];
      if (!source || !output) {
        throw new GyozaError(
          "usage",
          `node ${id} (${target.type}) input '${name}' links to ${String(value[0])}:${value[1]}, which is not in the graph`,
        );
      }
      const linkId = links.length + 1;
      links.push([linkId, source.id, value[1], target.id, toSlot, type]);
      target.inputs.push({ name, type, link: linkId });
      output.links = [...(output.links ?? []), linkId];
    }
  }
  return {
    last_node_id: Math.max(...ids.map(Number)),
    last_link_id: links.length,
    nodes: [...nodes.values()],
    links,
    groups: [],
    config: {},
    extra: {},
    version: 0.4,
  };
}
