import { describe, expect, it } from "vitest";
import { workflowToGraph } from "../image/index.js";
import { REQUEST } from "../test-support/backend-fixtures.js";
import { buildComfyGraph, type ComfyGraph } from "./comfyui-client.js";
import { buildComfyWorkflow } from "./comfyui-workflow.js";

const full = buildComfyGraph({
  ...REQUEST,
  checkpoint: "gyoza/gyoza-0123456789ab.safetensors",
  vae: "v.safetensors",
  loras: [
    { name: "l1.safetensors", strength: 0.5 },
    { name: "l2.safetensors", strength: 0.8 },
  ],
});

/**
 * The reader's view of a workflow, comparable with an API graph: it keeps the front end's
 * `control_after_generate` widget as an input and gives SaveImage's widget no name.
 */
function readBack(graph: ComfyGraph): ComfyGraph {
  const read = workflowToGraph(buildComfyWorkflow(graph))!;
  for (const node of Object.values(read)) {
    if (node.class_type === "KSampler") {
      expect(node.inputs.control_after_generate).toBe("fixed");
      delete node.inputs.control_after_generate;
    }
    if (node.class_type === "SaveImage") {
      expect(node.inputs.widgets_values).toEqual(["gyoza"]);
      delete node.inputs.widgets_values;
      node.inputs.filename_prefix = "gyoza";
    }
  }
  return read;
}

describe("buildComfyWorkflow", () => {
  it("reads back (through gyoza's own UI-workflow reader) as exactly the API graph it was made from", () => {
    expect(readBack(full)).toEqual(full);
    const plain = buildComfyGraph({ ...REQUEST, checkpoint: "a.safetensors" });
    expect(readBack(plain)).toEqual(plain);
  });

  it("writes widgets in ComfyUI's declaration order, the seed 'fixed' so a reload makes the same image", () => {
    const workflow = buildComfyWorkflow(full);
    const node = (type: string) => workflow.nodes.find((candidate) => candidate.type === type)!;
    expect(node("KSampler").widgets_values).toEqual([42, "fixed", 6, 7, "dpmpp_2m", "karras", 1]);
    expect(node("CLIPSetLastLayer").widgets_values).toEqual([-2]);
    expect(node("EmptyLatentImage").widgets_values).toEqual([512, 512, 1]);
    expect(node("CheckpointLoaderSimple").widgets_values).toEqual(["gyoza/gyoza-0123456789ab.safetensors"]);
    expect(node("VAELoader").widgets_values).toEqual(["v.safetensors"]);
    expect(node("SaveImage").widgets_values).toEqual(["gyoza"]);
    expect(node("VAEDecode").widgets_values).toEqual([]);
    expect(workflow.nodes.filter((n) => n.type === "LoraLoader").map((n) => n.widgets_values)).toEqual([
      ["l1.safetensors", 0.5, 0.5],
      ["l2.safetensors", 0.8, 0.8],
    ]);
  });

  it("keeps links consistent: each link's ends name the slots that list it, ids count up to last_link_id", () => {
    const workflow = buildComfyWorkflow(full);
    expect(workflow.version).toBe(0.4);
    expect(workflow.last_node_id).toBe(21);
    expect(workflow.links.map((link) => link[0])).toEqual(workflow.links.map((_, index) => index + 1));
    expect(workflow.last_link_id).toBe(workflow.links.length);
    const byId = new Map(workflow.nodes.map((node) => [node.id, node]));
    for (const [id, from, fromSlot, to, toSlot, type] of workflow.links) {
      const source = byId.get(from)!.outputs[fromSlot]!;
      const target = byId.get(to)!.inputs[toSlot]!;
      expect(source.links).toContain(id);
      expect(target.link).toBe(id);
      expect([source.type, target.type]).toEqual([type, type]);
    }
    // every input of every node is linked (the txt2img graph leaves none open)
    expect(workflow.nodes.flatMap((node) => node.inputs).every((input) => input.link !== null)).toBe(true);
    // the loaders sit left of what they feed, the saver rightmost
    const save = workflow.nodes.find((node) => node.type === "SaveImage")!;
    expect(Math.max(...workflow.nodes.map((node) => node.pos[0]))).toBe(save.pos[0]);
    expect(workflow.nodes.map((node) => node.order).sort((a, b) => a - b)).toEqual(
      workflow.nodes.map((_, index) => index),
    );
  });

  it("refuses a node it does not know instead of writing a workflow ComfyUI would load wrong", () => {
    const graph: ComfyGraph = { ...full, "30": { class_type: "UpscaleModelLoader", inputs: {} } };
    expect(() => buildComfyWorkflow(graph)).toThrow(/node 30 \(UpscaleModelLoader\).*core txt2img nodes/);
  });

  it("refuses a link to a node that is not in the graph", () => {
    const graph: ComfyGraph = {
      ...full,
      "7": { class_type: "VAEDecode", inputs: { samples: ["6", 0], vae: ["99", 0] } },
    };
    expect(() => buildComfyWorkflow(graph)).toThrow(/not in the graph/);
  });
});
