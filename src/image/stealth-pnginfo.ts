import { gunzipSync, inflateSync } from "node:zlib";
import { GyozaError } from "../errors.js";
import type { ByteSource } from "../io/byte-source.js";
import { readPngMetadata } from "./png-reader.js";
import { decodeUtf8 } from "./text-codec.js";

/**
 * "Stealth pnginfo" (sd-webui-stealth-pnginfo, also NovelAI): the infotext hidden in the least
 * significant bits of the alpha channel (or of R, G, B), read column by column: a 15-byte signature,
 * a 32-bit payload length in bits, then the payload (gzip when the signature says "comp").
 * https://github.com/ashen-sensored/sd_webui_stealth_pnginfo
 */
const SIGNATURES = ["stealth_pnginfo", "stealth_pngcomp", "stealth_rgbinfo", "stealth_rgbcomp"] as const;
const SIGNATURE_BITS = 15 * 8;
const LENGTH_BITS = 32;

/** Decoding pixels costs memory: images above this many decoded bytes (a 8k×8k RGBA) are not searched. */
export const MAX_STEALTH_DECODED_BYTES = 256 * 1024 * 1024;
/** The hidden text is metadata: kilobytes. */
const MAX_STEALTH_PAYLOAD_BYTES = 16 * 1024 * 1024;

export interface StealthPngInfo {
  signature: (typeof SIGNATURES)[number];
  text: string;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Reverses PNG scanline filters in place (https://www.w3.org/TR/png-3/#9Filter-types); returns row stride. */
function unfilter(data: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = data[y * (stride + 1)]!;
    const row = data.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const at = y * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? out[at + i - channels]! : 0;
      const b = y > 0 ? out[at - stride + i]! : 0;
      const c = i >= channels && y > 0 ? out[at - stride + i - channels]! : 0;
      const x = row[i]!;
      let value: number;
      if (filter === 0) value = x;
      else if (filter === 1) value = x + a;
      else if (filter === 2) value = x + b;
      else if (filter === 3) value = x + ((a + b) >> 1);
      else if (filter === 4) value = x + paeth(a, b, c);
      else throw new GyozaError("format", `unknown PNG filter type ${filter} in row ${y}`);
      out[at + i] = value & 0xff;
    }
  }
  return out;
}

/** Yields LSBs column by column: alpha only, or R, G, B of each pixel in turn. */
function* bits(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  alpha: boolean,
): Generator<number> {
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const at = (y * width + x) * channels;
      if (alpha) yield pixels[at + 3]! & 1;
      else for (let k = 0; k < 3; k++) yield pixels[at + k]! & 1;
    }
  }
}

function takeBytes(source: Generator<number>, count: number): Uint8Array | undefined {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    let byte = 0;
    for (let b = 0; b < 8; b++) {
      const next = source.next();
      if (next.done) return undefined;
      byte = (byte << 1) | next.value;
    }
    out[i] = byte;
  }
  return out;
}

function readHidden(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  alpha: boolean,
): StealthPngInfo | undefined {
  const stream = bits(pixels, width, height, channels, alpha);
  const head = takeBytes(stream, SIGNATURE_BITS / 8);
  const signature = head && SIGNATURES.find((s) => s === String.fromCharCode(...head));
  if (!signature || signature.includes("rgb") === alpha) return undefined;
  const lengthBytes = takeBytes(stream, LENGTH_BITS / 8);
  if (!lengthBytes) return undefined;
  const payloadBits = new DataView(lengthBytes.buffer).getUint32(0);
  if (payloadBits % 8 !== 0 || payloadBits / 8 > MAX_STEALTH_PAYLOAD_BYTES) {
    throw new GyozaError("limit", `hidden payload declares ${payloadBits} bits`);
  }
  const payload = takeBytes(stream, payloadBits / 8);
  if (!payload)
    throw new GyozaError("format", `hidden payload of ${payloadBits} bits runs past the last pixel`);
  let bytes: Uint8Array = payload;
  if (signature.endsWith("comp")) {
    try {
      bytes = gunzipSync(payload, { maxOutputLength: MAX_STEALTH_PAYLOAD_BYTES });
    } catch (cause) {
      throw new GyozaError("format", "hidden payload is not valid gzip", { cause });
    }
  }
  return { signature, text: decodeUtf8(bytes).text };
}

/**
 * Looks for stealth pnginfo in an 8-bit RGB/RGBA, non-interlaced PNG. This decodes the pixels, so it
 * is a separate, explicit step from reading metadata. Undefined when there is none or the image is of
 * another kind.
 */
export async function readStealthPngInfo(source: ByteSource): Promise<StealthPngInfo | undefined> {
  const png = await readPngMetadata(source);
  const ihdr = png.chunks.find((chunk) => chunk.type === "IHDR");
  if (!ihdr || ihdr.length < 13) return undefined;
  const header = await source.read(ihdr.offset + 8, 13);
  const [bitDepth, colorType, , , interlace] = header.subarray(8);
  if (bitDepth !== 8 || (colorType !== 2 && colorType !== 6) || interlace !== 0) return undefined;
  const channels = colorType === 6 ? 4 : 3;
  const width = png.width ?? 0;
  const height = png.height ?? 0;
  const decodedBytes = height * (1 + width * channels);
  if (width === 0 || height === 0 || decodedBytes > MAX_STEALTH_DECODED_BYTES) return undefined;
  const idat = png.chunks.filter((chunk) => chunk.type === "IDAT");
  const compressed = Buffer.concat(
    await Promise.all(idat.map((chunk) => source.read(chunk.offset + 8, chunk.length))),
  );
  let data: Uint8Array;
  try {
    data = inflateSync(compressed, { maxOutputLength: decodedBytes });
  } catch (cause) {
    throw new GyozaError("format", "image data does not inflate", { file: source.name, cause });
  }
  if (data.length < decodedBytes)
    throw new GyozaError("format", "image data is shorter than the image", { file: source.name });
  const pixels = unfilter(data, width, height, channels);
  return (
    (channels === 4 ? readHidden(pixels, width, height, channels, true) : undefined) ??
    readHidden(pixels, width, height, channels, false)
  );
}
