import { createCipheriv, createHash } from "node:crypto";
import { BUILTIN_ARCHITECTURES } from "../arch/detect.js";
import { getLayout } from "../arch/layouts.js";
import { type DType, tensorByteLength } from "../io/dtype.js";

/**
 * Synthetic Stable Diffusion checkpoints: real key names and shapes from the reference layouts,
 * deterministic pseudo-random values. Full size for benchmarks, tiny (widths ÷ 16) for tests and the
 * demo. Nothing here is a real model: the values only have plausible magnitudes (|v| ≈ 1e-3…0.1).
 */
export type SyntheticLayout = "sd1-ldm" | "sd2-ldm" | "sdxl-sgm" | "sd1-kohya" | "sdxl-kohya";

export interface SyntheticOptions {
  layout: SyntheticLayout;
  /** full: real shapes; tiny: widths ÷ 16 (demo); micro: widths ÷ 64 (unit tests). */
  size: "full" | "tiny" | "micro";
  dtype: "F16" | "BF16" | "F32";
  /** Different seeds give different models of the same layout. */
  seed: number;
  /** Include `model_ema.*` (an unpruned training checkpoint). */
  ema?: boolean;
  /** Include the optional scheduler buffers and position_ids. */
  optional?: boolean;
  /** 9-channel inpainting UNet. */
  inpaint?: boolean;
  /** SD 2.x 768-v: the output norm bias gets the spread ComfyUI's v-prediction heuristic looks for. */
  vPrediction?: boolean;
  /** A standalone VAE file (like kl-f8-anime2.ckpt): only the VAE, keys without `first_stage_model.`. */
  vaeOnly?: boolean;
}

export interface SyntheticTensor {
  key: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
}

/** Dimensions at or above this are scaled down in tiny and micro models. */
const TINY_MIN_DIM = 128;
const DIVISOR = { full: 1, tiny: 16, micro: 64 } as const;
const CONTEXT_KEY = /attn2\.to_[kv]\.weight$/;
const V_PREDICTION_KEY = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias";
/** The UNet's input convolution, whose 4 latent channels become 9 in an inpainting model (per layout). */
const INPUT_CONV_KEYS = new Set([
  "model.diffusion_model.input_blocks.0.0.weight",
  "unet.conv_in.weight",
  "unet.input_blocks.0.0.weight",
]);

/**
 * Axes the architecture markers pin (context dim, input channels, RGB…): tiny models keep the
 * reference size there so detection still sees the evidence.
 */
function pinnedAxes(): { match: (key: string) => boolean; axes: Set<number> }[] {
  const pinned: { match: (key: string) => boolean; axes: Set<number> }[] = [];
  for (const spec of BUILTIN_ARCHITECTURES) {
    for (const marker of [...spec.required, ...spec.evidence]) {
      if (!marker.shape) continue;
      const axes = new Set<number>();
      marker.shape.forEach((dim, axis) => {
        if (dim !== null) axes.add(axis);
      });
      const pattern = marker.keyPattern ? new RegExp(marker.keyPattern) : undefined;
      pinned.push({ match: (key) => (pattern ? pattern.test(key) : key === marker.key), axes });
    }
  }
  return pinned;
}

function scaledShape(
  key: string,
  shape: readonly number[],
  pinned: ReturnType<typeof pinnedAxes>,
  divisor: number,
): number[] {
  const axes = new Set(pinned.filter((p) => p.match(key)).flatMap((p) => [...p.axes]));
  return shape.map((dim, axis) => {
    if (axes.has(axis)) return dim;
    if (axis === 1 && CONTEXT_KEY.test(key)) return dim;
    return dim >= TINY_MIN_DIM ? Math.max(1, Math.round(dim / divisor)) : dim;
  });
}

export function syntheticTensors(options: SyntheticOptions): SyntheticTensor[] {
  const layout = getLayout(options.layout, { withEma: options.ema });
  const pinned = pinnedAxes();
  const tensors: SyntheticTensor[] = [];
  for (const entry of layout.entries) {
    if (options.vaeOnly && entry.component !== "vae") continue;
    const isPositionIds = entry.key.endsWith("position_ids");
    if (entry.optional && !options.optional && entry.component !== "ema" && !isPositionIds) continue;
    let shape = [...entry.shape];
    if (options.inpaint && INPUT_CONV_KEYS.has(entry.key)) shape[1] = 9;
    if (options.size !== "full") shape = scaledShape(entry.key, shape, pinned, DIVISOR[options.size]);
    const dtype: DType = entry.dtype === "F32" ? options.dtype : entry.dtype;
    const key = options.vaeOnly ? entry.key.replace(/^first_stage_model\./, "") : entry.key;
    tensors.push({ key, dtype, shape, byteLength: tensorByteLength(dtype, shape) });
  }
  return tensors;
}

/** Deterministic pseudo-random bytes for one tensor: AES-128-CTR keyed by (seed, key), GB/s and seedable. */
function randomStream(seed: number, key: string): (length: number) => Buffer {
  const digest = createHash("sha256").update(`${seed}\0${key}`).digest();
  const cipher = createCipheriv("aes-128-ctr", digest.subarray(0, 16), digest.subarray(16, 32));
  return (length) => cipher.update(Buffer.alloc(length));
}

/**
 * Fills the bytes of tensor `tensor` from element offset `byteBegin` (chunked generation keeps memory
 * bounded for 100 MB tensors). Random bits are shaped into finite values of moderate magnitude.
 */
export function syntheticTensorBytes(
  options: SyntheticOptions,
): (tensor: SyntheticTensor) => Generator<Uint8Array> {
  return function* generate(tensor) {
    if (tensor.key.endsWith("position_ids")) {
      const ids = new BigInt64Array(tensor.byteLength / 8);
      for (let i = 0; i < ids.length; i++) ids[i] = BigInt(i % 77);
      yield new Uint8Array(ids.buffer);
      return;
    }
    const next = randomStream(options.seed, tensor.key);
    const spread = options.vPrediction && tensor.key === V_PREDICTION_KEY ? 3 : 0;
    const chunkBytes = 16 << 20;
    for (let done = 0; done < tensor.byteLength; done += chunkBytes) {
      const bytes = next(Math.min(chunkBytes, tensor.byteLength - done));
      shapeRandomBits(bytes, tensor.dtype, spread);
      yield bytes;
    }
  };
}

function shapeRandomBits(bytes: Buffer, dtype: DType, spread: number): void {
  if (dtype === "F16") {
    const h = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    // sign and mantissa random, exponent field 5..12 (+spread): |v| in [2^-10, 2^-3)
    for (let i = 0; i < h.length; i++) {
      const r = h[i]!;
      h[i] = (r & 0x83ff) | ((5 + spread + ((r >> 10) & 7)) << 10);
    }
  } else if (dtype === "BF16") {
    const h = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    for (let i = 0; i < h.length; i++) {
      const r = h[i]!;
      h[i] = (r & 0x807f) | ((117 + spread + ((r >> 7) & 7)) << 7);
    }
  } else if (dtype === "F32" || dtype === "F64") {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    for (let i = 0; i < w.length; i++) {
      const r = w[i]!;
      w[i] = ((r & 0x807fffff) | ((117 + spread + ((r >>> 23) & 7)) << 23)) >>> 0;
    }
    if (dtype === "F64") {
      // reinterpret pairs: keep it simple and finite by converting from the f32 values
      const f = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      const d = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
      for (let i = 0; i < d.length; i++) d[i] = f[2 * i]!;
    }
  } else if (
    dtype === "I32" ||
    dtype === "I64" ||
    dtype === "U8" ||
    dtype === "I8" ||
    dtype === "I16" ||
    dtype === "BOOL"
  ) {
    bytes.fill(dtype === "BOOL" ? 1 : 0);
  }
}
