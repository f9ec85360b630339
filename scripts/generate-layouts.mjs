#!/usr/bin/env node
// Generates src/arch/layouts/*.json from the real state-dict layouts in ../shared/reference/model-configs
// (sd-mecha's model configs: every key, shape and dtype). Run after the reference data changes:
//   node scripts/generate-layouts.mjs [path/to/model-configs] && npx biome format --write src/arch/layouts
// The kohya layouts (one file, other key names: SD1 with diffusers names under unet./te./vae.; SDXL with
// the SGM UNet under unet., transformers text encoders under te1./te2.) are stored as they are: they are
// what `gyoza convert --layout ldm` converts from (src/arch/layout-conversions.json).
// The EMA component is not stored: it is derived from the UNet keys at load time (src/arch/layouts.ts).
// SD 2.x is not among the reference files; its layout is derived here from SD 1.x (UNet with 1024-dim
// cross-attention, linear proj_in/proj_out, 64-channel heads) and from SDXL's OpenCLIP text encoder (ViT-bigG
// → ViT-H/14: width 1280 → 1024, 32 → 24 layers), the text encoder of stable-diffusion-2.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

const root = new URL("..", import.meta.url).pathname;
const configs = process.argv[2] ?? join(root, "../shared/reference/model-configs");
const outDir = join(root, "src/arch/layouts");

const DTYPE = { float32: "F32", float16: "F16", bfloat16: "BF16", int64: "I64", int32: "I32" };

function load(name) {
  const doc = parse(readFileSync(join(configs, `${name}.yaml`), "utf8"));
  const components = {};
  for (const [component, entries] of Object.entries(doc.components)) {
    if (component === "ema") continue;
    components[component] = Object.entries(entries).map(([key, e]) => {
      const row = [key, e.shape, DTYPE[e.dtype] ?? e.dtype];
      if (e.optional || e.aliases?.length) row.push(e.optional ? 1 : 0);
      if (e.aliases?.length) row.push(e.aliases);
      return row;
    });
  }
  return { id: doc.identifier, source: `shared/reference/model-configs/${name}.yaml`, components };
}

function write(layout) {
  const lines = Object.entries(layout.components).map(
    ([component, rows]) =>
      `    ${JSON.stringify(component)}: [\n${rows.map((r) => `      ${JSON.stringify(r)}`).join(",\n")}\n    ]`,
  );
  const text = `{\n  "id": ${JSON.stringify(layout.id)},\n  "source": ${JSON.stringify(layout.source)},\n  "components": {\n${lines.join(",\n")}\n  }\n}\n`;
  writeFileSync(join(outDir, `${layout.id}.json`), text);
  console.log(
    `wrote ${layout.id}.json: ${Object.values(layout.components).reduce((n, r) => n + r.length, 0)} keys`,
  );
}

const sd1 = load("sd1-ldm");
const sdxl = load("sdxl-sgm");

function deriveSd2() {
  const unet = sd1.components.diffuser.map(([key, shape, dtype, ...rest]) => {
    let s = shape;
    if (/attn2\.to_[kv]\.weight$/.test(key)) s = [shape[0], 1024];
    if (/\.proj_(in|out)\.weight$/.test(key)) s = shape.slice(0, 2); // use_linear_in_transformer
    return [key, s, dtype, ...rest];
  });
  const scale = (d) => ({ 1280: 1024, 5120: 4096, 3840: 3072 })[d] ?? d;
  const clip = sdxl.components.clip_g
    .filter(([key]) => {
      const layer = /resblocks\.(\d+)\./.exec(key);
      return !layer || Number(layer[1]) < 24;
    })
    .map(([key, shape, dtype, ...rest]) => [
      key.replace("conditioner.embedders.1.model.", "cond_stage_model.model."),
      shape.map(scale),
      dtype,
      ...rest,
    ]);
  return {
    id: "sd2-ldm",
    source:
      "derived from sd1-ldm (UNet) and sdxl-sgm clip_g (OpenCLIP ViT-H/14) by scripts/generate-layouts.mjs",
    components: {
      clip_h: clip,
      vae: sd1.components.vae,
      diffuser: unet,
      scheduler: sd1.components.scheduler,
    },
  };
}

write(sd1);
write(sdxl);
write(deriveSd2());
write(load("sd1-kohya"));
write(load("sdxl-kohya"));
