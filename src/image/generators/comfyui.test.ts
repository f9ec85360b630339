import { describe, expect, it } from "vitest";
import { infoFromComfyGraph } from "./comfyui.js";
import { toComfyGraph, workflowToGraph } from "./comfyui-graph.js";

const apiGraph = {
  "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "gyozaMix_v32.safetensors" } },
  "10": {
    class_type: "LoraLoader",
    inputs: {
      lora_name: "detail.safetensors",
      strength_model: 0.7,
      strength_clip: 1,
      model: ["4", 0],
      clip: ["4", 1],
    },
  },
  "11": { class_type: "CLIPSetLastLayer", inputs: { stop_at_clip_layer: -2, clip: ["10", 1] } },
  "6": {
    class_type: "CLIPTextEncode",
    inputs: { text: "a gyoza, embedding:AuroraNegative", clip: ["11", 0] },
  },
  "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["11", 0] } },
  "5": { class_type: "EmptyLatentImage", inputs: { width: 512, height: 768, batch_size: 1 } },
  "12": { class_type: "PrimitiveSeed", inputs: { seed: 42 } },
  "3": {
    class_type: "KSampler",
    inputs: {
      seed: ["12", 0],
      steps: 25,
      cfg: Number.NaN,
      sampler_name: "euler",
      scheduler: "karras",
      denoise: 1,
      model: ["10", 0],
      positive: ["6", 0],
      negative: ["7", 0],
      latent_image: ["5", 0],
    },
  },
  "13": { class_type: "VAELoader", inputs: { vae_name: "kl-f8-anime2.ckpt" } },
};

describe("infoFromComfyGraph", () => {
  it("follows links from the sampler to prompts, seed, size, checkpoint and LoRAs", () => {
    const info = infoFromComfyGraph(toComfyGraph(apiGraph)!, {});
    expect(info).toMatchObject({
      generator: "comfyui",
      prompt: "a gyoza, embedding:AuroraNegative",
      negativePrompt: "blurry",
      seed: 42,
      steps: 25,
      sampler: "euler",
      scheduler: "karras",
      width: 512,
      height: 768,
      clipSkip: 2,
      model: { name: "gyozaMix_v32.safetensors" },
      vae: { name: "kl-f8-anime2.ckpt" },
      loras: [{ name: "detail.safetensors", weight: 0.7 }],
      embeddings: [{ name: "AuroraNegative" }],
    });
    expect(info.cfgScale).toBeUndefined(); // NaN in the graph is not a number to report
  });

  it("does not loop on a graph whose links form a cycle", () => {
    const cyclic = {
      "1": {
        class_type: "KSampler",
        inputs: { steps: 1, sampler_name: "euler", positive: ["2", 0], model: ["2", 0] },
      },
      "2": { class_type: "Reroute", inputs: { conditioning: ["2", 0], model: ["1", 0] } },
    };
    expect(() => infoFromComfyGraph(toComfyGraph(cyclic)!, {})).not.toThrow();
  });

  it("reads a hires pass through a latent upscale: factor, method, steps and denoise", () => {
    const hiresGraph = {
      ...apiGraph,
      "20": {
        class_type: "LatentUpscaleBy",
        inputs: { upscale_method: "bislerp", scale_by: 1.5, samples: ["3", 0] },
      },
      "21": {
        class_type: "KSampler",
        inputs: { ...apiGraph["3"].inputs, seed: 7, steps: 12, denoise: 0.45, latent_image: ["20", 0] },
      },
    };
    const info = infoFromComfyGraph(toComfyGraph(hiresGraph)!, {});
    expect(info).toMatchObject({ seed: 42, steps: 25, width: 512 });
    expect(info.hires).toEqual({ upscale: 1.5, upscaler: "bislerp", steps: 12, denoise: 0.45 });
  });

  it("sees no hires pass in a graph with one sampler, or a second one not fed by the first", () => {
    expect(infoFromComfyGraph(toComfyGraph(apiGraph)!, {}).hires).toBeUndefined();
    const refiner = {
      ...apiGraph,
      "21": {
        class_type: "KSampler",
        inputs: { ...apiGraph["3"].inputs, denoise: 0.3, latent_image: ["5", 0] },
      },
    };
    expect(infoFromComfyGraph(toComfyGraph(refiner)!, {}).hires).toBeUndefined();
  });
});

describe("workflowToGraph", () => {
  it("turns UI nodes and links into API inputs by widget order", () => {
    const workflow = {
      nodes: [
        { id: 1, type: "CheckpointLoaderSimple", widgets_values: ["m.safetensors"] },
        {
          id: 2,
          type: "KSampler",
          widgets_values: [7, "fixed", 20, 6.5, "euler", "normal", 1],
          inputs: [{ name: "model", link: 9 }],
        },
      ],
      links: [[9, 1, 0, 2, 0, "MODEL"]],
    };
    expect(workflowToGraph(workflow)).toEqual({
      "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "m.safetensors" } },
      "2": {
        class_type: "KSampler",
        inputs: {
          seed: 7,
          control_after_generate: "fixed",
          steps: 20,
          cfg: 6.5,
          sampler_name: "euler",
          scheduler: "normal",
          denoise: 1,
          model: ["1", 0],
        },
      },
    });
  });
});
