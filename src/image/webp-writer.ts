import { GyozaError } from "../errors.js";
import { startsWithAscii } from "./jpeg-reader.js";

const VP8X_ICC = 0x20;
const VP8X_ALPHA = 0x10;
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;
const VP8X_ANIMATION = 0x02;

export interface RawWebpChunk {
  fourcc: string;
  /** Header, payload and pad byte, exactly as in the file. */
  bytes: Uint8Array;
  payload: Uint8Array;
}

export function splitWebp(bytes: Uint8Array, name = "<webp>"): RawWebpChunk[] {
  if (bytes.length < 12 || !startsWithAscii(bytes, "RIFF") || !startsWithAscii(bytes.subarray(8), "WEBP")) {
    throw new GyozaError("format", "not a WebP file", { file: name });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = 8 + view.getUint32(4, true);
  if (end > bytes.length)
    throw new GyozaError("format", `RIFF declares ${end} bytes but the file has ${bytes.length}`, {
      file: name,
    });
  const chunks: RawWebpChunk[] = [];
  let offset = 12;
  while (offset + 8 <= end) {
    const fourcc = String.fromCharCode(...bytes.subarray(offset, offset + 4));
    const size = view.getUint32(offset + 4, true);
    if (offset + 8 + size > end)
      throw new GyozaError("format", `chunk "${fourcc}" at offset ${offset} runs past the end`, {
        file: name,
      });
    const padded = Math.min(end, offset + 8 + size + (size & 1));
    chunks.push({
      fourcc,
      bytes: bytes.subarray(offset, padded),
      payload: bytes.subarray(offset + 8, offset + 8 + size),
    });
    offset = padded;
  }
  return chunks;
}

export function makeWebpChunk(fourcc: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length + (payload.length & 1));
  for (let i = 0; i < 4; i++) out[i] = fourcc.charCodeAt(i);
  new DataView(out.buffer).setUint32(4, payload.length, true);
  out.set(payload, 8);
  return out;
}

/** Canvas size and alpha of a simple-format WebP, to build the VP8X header metadata needs. */
function simpleImageInfo(
  chunk: RawWebpChunk,
  name?: string,
): { width: number; height: number; alpha: boolean } {
  const p = chunk.payload;
  if (chunk.fourcc === "VP8 " && p.length >= 10) {
    return { width: (p[6]! | (p[7]! << 8)) & 0x3fff, height: (p[8]! | (p[9]! << 8)) & 0x3fff, alpha: false };
  }
  if (chunk.fourcc === "VP8L" && p.length >= 5) {
    const bits = p[1]! | (p[2]! << 8) | (p[3]! << 16) | (p[4]! << 24);
    return {
      width: 1 + (bits & 0x3fff),
      height: 1 + ((bits >>> 14) & 0x3fff),
      alpha: ((bits >>> 28) & 1) === 1,
    };
  }
  throw new GyozaError("format", "WebP has neither VP8X nor a VP8/VP8L image chunk", { file: name });
}

function vp8xPayload(flags: number, width: number, height: number): Uint8Array {
  const out = new Uint8Array(10);
  out[0] = flags;
  out[4] = (width - 1) & 0xff;
  out[5] = ((width - 1) >> 8) & 0xff;
  out[6] = ((width - 1) >> 16) & 0xff;
  out[7] = (height - 1) & 0xff;
  out[8] = ((height - 1) >> 8) & 0xff;
  out[9] = ((height - 1) >> 16) & 0xff;
  return out;
}

/**
 * Replaces a WebP's EXIF and XMP chunks (null: remove) and sets the VP8X flags to match, turning a
 * simple-format file into the extended format when metadata is added. Image chunks are copied as is.
 */
export function replaceWebpMetadata(
  webp: Uint8Array,
  metadata: { exif: Uint8Array | null; xmp: Uint8Array | null },
  name?: string,
): Uint8Array {
  const chunks = splitWebp(webp, name);
  const body = chunks.filter(
    (chunk) => chunk.fourcc !== "EXIF" && chunk.fourcc !== "XMP " && chunk.fourcc !== "VP8X",
  );
  const vp8x = chunks.find((chunk) => chunk.fourcc === "VP8X");
  const metaFlags = (metadata.exif ? VP8X_EXIF : 0) | (metadata.xmp ? VP8X_XMP : 0);
  let header: Uint8Array | undefined;
  if (vp8x) {
    const payload = Uint8Array.from(vp8x.payload);
    payload[0] = (payload[0]! & ~(VP8X_EXIF | VP8X_XMP)) | metaFlags;
    header = makeWebpChunk("VP8X", payload);
  } else if (metaFlags !== 0) {
    const image = simpleImageInfo(body[0]!, name);
    header = makeWebpChunk(
      "VP8X",
      vp8xPayload(metaFlags | (image.alpha ? VP8X_ALPHA : 0), image.width, image.height),
    );
  }
  const parts = [
    ...(header ? [header] : []),
    ...body.map((chunk) => chunk.bytes),
    ...(metadata.exif ? [makeWebpChunk("EXIF", metadata.exif)] : []),
    ...(metadata.xmp ? [makeWebpChunk("XMP ", metadata.xmp)] : []),
  ];
  const size = parts.reduce((sum, part) => sum + part.length, 4);
  const riff = new Uint8Array(12);
  riff.set([0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50]);
  new DataView(riff.buffer).setUint32(4, size, true);
  return Buffer.concat([riff, ...parts]);
}

/** The raw EXIF (TIFF, as stored) and XMP payloads of a WebP. */
export function webpMetadataPayloads(
  webp: Uint8Array,
  name?: string,
): { exif: Uint8Array | null; xmp: Uint8Array | null } {
  const chunks = splitWebp(webp, name);
  return {
    exif: chunks.find((chunk) => chunk.fourcc === "EXIF")?.payload ?? null,
    xmp: chunks.find((chunk) => chunk.fourcc === "XMP ")?.payload ?? null,
  };
}

export const WEBP_FLAGS = { VP8X_ICC, VP8X_ALPHA, VP8X_EXIF, VP8X_XMP, VP8X_ANIMATION };
