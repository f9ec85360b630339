import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { BufferByteSource } from "../io/byte-source.js";
import { detectGeneration } from "./detect-generation.js";
import { textsByKey } from "./metadata-types.js";
import { readImageMetadata } from "./read-image-metadata.js";
import { readStealthPngInfo } from "./stealth-pnginfo.js";
import { FIXTURE_IMAGE_DIR } from "./test-support/fixture-images.js";

/** Small fixtures of every container, so a few hundred mutations run in well under a second each. */
const SEEDS = [
  "a1111_sdparsers_cropped_png.png",
  "a1111_sdparsers_cropped_jpg.jpg",
  "a1111_sdparsers_ztxt_after_idat_png.png",
  "comfyui_sdparsers_img2img_cropped_png.png",
  "a1111_sdparsers_stealth_png.png",
  "novelai_sdparsers_novelai1_cropped_png.png",
];
const MUTATIONS_PER_FILE = 150;

/** xorshift32: the same mutations on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
}

function mutate(bytes: Uint8Array, next: () => number): Uint8Array {
  const out = Uint8Array.from(bytes);
  const kind = next();
  if (kind < 0.3) return out.subarray(0, Math.floor(next() * out.length)); // truncation
  const flips = 1 + Math.floor(next() * 8);
  for (let i = 0; i < flips; i++) {
    const at = Math.floor(next() * out.length);
    // Length and offset fields are where hostile files hurt: write large values there too.
    out[at] = kind < 0.6 ? 0xff : Math.floor(next() * 256);
  }
  return out;
}

describe("readers on mutated fixtures", () => {
  it.each(SEEDS)(`never crash or hang on ${MUTATIONS_PER_FILE} corrupted copies of %s`, async (name) => {
    const original = readFileSync(FIXTURE_IMAGE_DIR + name);
    const next = random(name.length * 7919);
    for (let i = 0; i < MUTATIONS_PER_FILE; i++) {
      const source = new BufferByteSource(mutate(original, next), `${name}#${i}`);
      try {
        const metadata = await readImageMetadata(source);
        detectGeneration(textsByKey(metadata.texts));
        if (metadata.container === "png") await readStealthPngInfo(source);
      } catch (error) {
        if (!isGyozaError(error)) throw error;
        expect(["format", "limit"]).toContain(error.code);
      }
    }
  });
});
