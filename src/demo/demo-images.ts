import sharp from "sharp";
import { makePngTextChunk, replacePngMetadata } from "../image/index.js";

export interface DemoImageSpec {
  /** Picks the colours, so every sample looks different. */
  seed: number;
  width: number;
  height: number;
  /** A1111 infotext written as the PNG's `parameters` text, as A1111 saves it. */
  infotext: string;
  /** Drawn on the picture. */
  label: string;
}

/**
 * A sample image as a generator would save it: pixels rendered by sharp (an SVG of gradient
 * circles, libvips' SVG loader) and the generation data in a `parameters` text chunk (tEXt when
 * Latin-1, else iTXt, as PIL writes it for A1111).
 */
export async function renderDemoImage(spec: DemoImageSpec): Promise<Uint8Array> {
  const hue = (spec.seed * 67) % 360;
  const circles = Array.from({ length: 7 }, (_, i) => {
    const x = ((spec.seed * 37 + i * 53) % 100) / 100;
    const y = ((spec.seed * 11 + i * 29) % 100) / 100;
    const r = 0.1 + ((spec.seed + i * 7) % 10) / 40;
    return `<circle cx="${x * spec.width}" cy="${y * spec.height}" r="${r * spec.width}" fill="hsl(${(hue + i * 40) % 360} 70% 60%)" fill-opacity="0.55"/>`;
  }).join("");
  const label = spec.label.replace(/[<&>]/g, "");
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${spec.width}" height="${spec.height}">` +
    `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${hue} 60% 85%)"/>` +
    `<stop offset="1" stop-color="hsl(${(hue + 120) % 360} 50% 35%)"/></linearGradient></defs>` +
    `<rect width="100%" height="100%" fill="url(#g)"/>${circles}` +
    `<text x="50%" y="92%" text-anchor="middle" font-family="sans-serif" font-size="${Math.round(spec.width / 14)}" fill="white">${label}</text></svg>`;
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  return replacePngMetadata(png, [makePngTextChunk("parameters", spec.infotext)], "demo image");
}
