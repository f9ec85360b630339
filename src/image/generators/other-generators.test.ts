import { describe, expect, it } from "vitest";
import { detectGeneration, detectHiddenGeneration } from "../detect-generation.js";

describe("front ends without a fixture image", () => {
  it("recognises Easy Diffusion's one-chunk-per-setting PNG text", () => {
    const info = detectGeneration({
      prompt: "a bowl of gyoza",
      negative_prompt: "blurry",
      seed: "42",
      use_stable_diffusion_model: "gyozaMix_v32",
      sampler_name: "euler_a",
      num_inference_steps: "25",
      guidance_scale: "7.5",
      width: "512",
      height: "768",
      use_lora_model: "detail",
      lora_alpha: "0.5",
    });
    expect(info).toMatchObject({
      generator: "easy-diffusion",
      prompt: "a bowl of gyoza",
      seed: 42,
      steps: 25,
      cfgScale: 7.5,
      width: 512,
      height: 768,
      model: { name: "gyozaMix_v32" },
      loras: [{ name: "detail", weight: 0.5 }],
    });
  });

  it("recognises Draw Things settings inside the XMP packet", () => {
    const json = JSON.stringify({
      c: "a bowl of gyoza",
      uc: "blurry",
      scale: 6,
      seed: 7,
      steps: 30,
      size: "640x512",
      sampler: "DPM++ 2M Karras",
      model: "sd_v1.5_f16.ckpt",
      lora: [{ file: "detail_lora_f16.ckpt", weight: 0.6 }],
    });
    const xmp = `<x:xmpmeta><rdf:RDF><rdf:Description><exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">${json.replace(/"/g, "&quot;")}</rdf:li></rdf:Alt></exif:UserComment></rdf:Description></rdf:RDF></x:xmpmeta>`;
    expect(detectGeneration({ "XML:com.adobe.xmp": xmp })).toMatchObject({
      generator: "drawthings",
      prompt: "a bowl of gyoza",
      negativePrompt: "blurry",
      cfgScale: 6,
      width: 640,
      height: 512,
      loras: [{ name: "detail_lora_f16.ckpt", weight: 0.6 }],
    });
  });

  it("recognises InvokeAI 2.x sd-metadata with its bracketed negative prompt", () => {
    const meta = {
      model_weights: "stable-diffusion-1.5",
      model_hash: "cc6cb27103",
      image: {
        prompt: [{ prompt: "gyoza [blurry]", weight: 1 }],
        seed: 9,
        steps: 50,
        cfg_scale: 7.5,
        sampler: "k_lms",
        width: 512,
        height: 512,
      },
    };
    expect(detectGeneration({ "sd-metadata": JSON.stringify(meta) })).toMatchObject({
      generator: "invokeai",
      prompt: "gyoza",
      negativePrompt: "blurry",
      model: { name: "stable-diffusion-1.5", hash: "cc6cb27103" },
    });
  });

  it("reads NovelAI's stealth copy of its PNG fields", () => {
    // Shortened from what novelai_enslo_novelai-curated_png hides in its alpha channel (full corpus).
    const hidden = JSON.stringify({
      Description: "1girl, solo, hatsune miku, rating:general",
      Software: "NovelAI",
      Source: "NovelAI Diffusion V4.5 C02D4F98",
      Comment: JSON.stringify({
        prompt: "1girl, solo, hatsune miku, rating:general",
        steps: 23,
        height: 1024,
        width: 1024,
        scale: 5.0,
        seed: 2156638429,
        sampler: "k_euler_ancestral",
        uc: "blurry, lowres",
      }),
    });
    expect(detectHiddenGeneration(hidden)).toMatchObject({ generator: "novelai", seed: 2156638429 });
  });

  const graph = {
    "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "gyozaMix_v32.safetensors" } },
    "6": { class_type: "CLIPTextEncode", inputs: { text: "gyoza (graph)" } },
    "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry" } },
    "3": {
      class_type: "KSampler",
      inputs: {
        seed: 3,
        steps: 20,
        cfg: 5,
        sampler_name: "euler",
        scheduler: "normal",
        model: ["4", 0],
        positive: ["6", 0],
        negative: ["7", 0],
      },
    },
  };

  it("recognises Civitai's on-site ComfyUI by the extraMetadata in its prompt graph", () => {
    const prompt = JSON.stringify({
      ...graph,
      extraMetadata: JSON.stringify({ prompt: "gyoza", negativePrompt: "blurry", cfgScale: 5, steps: 20 }),
    });
    expect(detectGeneration({ prompt })).toMatchObject({
      generator: "civitai",
      prompt: "gyoza",
      seed: 3,
      model: { name: "gyozaMix_v32.safetensors" },
    });
  });

  it("recognises TensorArt's generation_data beside its graph", () => {
    const generationData = `${JSON.stringify({ prompt: "gyoza", negativePrompt: "blurry", baseModel: { modelFileName: "gyozaMix_v32", hash: "0123456789" } })}\0\0`;
    expect(
      detectGeneration({ prompt: JSON.stringify(graph), generation_data: generationData }),
    ).toMatchObject({
      generator: "tensorart",
      prompt: "gyoza",
      steps: 20,
      model: { name: "gyozaMix_v32", hash: "0123456789" },
    });
  });

  it("recognises Ruined Fooocus JSON parameters", () => {
    const parameters = JSON.stringify({
      Prompt: "gyoza",
      Negative: "blurry",
      steps: 30,
      cfg: 8,
      width: 1152,
      height: 896,
      seed: 11,
      sampler_name: "dpmpp_2m_sde_gpu",
      scheduler: "karras",
      base_model_name: "sd_xl_base_1.0.safetensors",
      base_model_hash: "31e35c80fc",
      loras: [{ name: "detail", weight: 0.5 }],
      software: "RuinedFooocus",
    });
    expect(detectGeneration({ parameters })).toMatchObject({
      generator: "fooocus",
      prompt: "gyoza",
      cfgScale: 8,
      width: 1152,
      model: { name: "sd_xl_base_1.0.safetensors", hash: "31e35c80fc" },
      loras: [{ name: "detail", weight: 0.5 }],
    });
  });

  it("names ComfyUI and Fooocus as the writers of infotext whose Version says so", () => {
    const line = "Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512";
    expect(detectGeneration({ parameters: `gyoza\n${line}, Version: ComfyUI` })?.generator).toBe("comfyui");
    expect(
      detectGeneration({ exif_user_comment: `gyoza\n${line}, Version: Fooocus v2.5.5` })?.generator,
    ).toBe("fooocus");
    expect(
      detectGeneration({ parameters: `gyoza\n${line}, ADetailer version: 24.1, Version: v1.10.1` })
        ?.generator,
    ).toBe("a1111");
  });
});
