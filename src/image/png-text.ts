import { inflateSync } from "node:zlib";
import { GyozaError } from "../errors.js";
import { decodeLatin1, decodeUtf8, decodeUtf8Strict, isAscii, isLatin1 } from "./text-codec.js";

/** Generation metadata is kilobytes; a ComfyUI workflow a few MB. More than this is a zip bomb. */
export const MAX_INFLATED_TEXT_BYTES = 64 * 1024 * 1024;

export type PngTextType = "tEXt" | "zTXt" | "iTXt";

export interface PngText {
  keyword: string;
  text: string;
  /** How the bytes were read, e.g. `latin-1`, `utf-8`, `utf-8 in tEXt`. */
  encoding: string;
}

function inflateText(data: Uint8Array, what: string): Uint8Array {
  try {
    return inflateSync(data, { maxOutputLength: MAX_INFLATED_TEXT_BYTES });
  } catch (cause) {
    const tooBig = (cause as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE";
    throw new GyozaError(
      tooBig ? "limit" : "format",
      tooBig
        ? `${what} inflates to more than ${MAX_INFLATED_TEXT_BYTES} bytes`
        : `${what} holds invalid zlib data`,
      { cause },
    );
  }
}

/**
 * Decodes a tEXt, zTXt or iTXt chunk body (https://www.w3.org/TR/png-3/#11textinfo).
 * tEXt and zTXt are Latin-1 by the spec, but some writers (Stability Matrix) put raw UTF-8 there:
 * non-ASCII bytes that form valid UTF-8 are read as UTF-8, which is what their authors meant.
 */
export function decodePngText(type: PngTextType, data: Uint8Array): PngText {
  const nul = data.indexOf(0);
  if (nul < 1 || nul > 79) throw new GyozaError("format", `${type} chunk has no valid keyword`);
  const keyword = decodeLatin1(data.subarray(0, nul));
  if (type === "tEXt") return { keyword, ...decodeNarrowText(data.subarray(nul + 1)) };
  if (type === "zTXt") {
    if (data.length < nul + 2) throw new GyozaError("format", `zTXt chunk "${keyword}" is cut short`);
    if (data[nul + 1] !== 0)
      throw new GyozaError("format", `zTXt chunk "${keyword}" uses unknown compression`);
    return { keyword, ...decodeNarrowText(inflateText(data.subarray(nul + 2), `zTXt chunk "${keyword}"`)) };
  }
  if (data.length < nul + 3) throw new GyozaError("format", `iTXt chunk "${keyword}" is cut short`);
  const compressed = data[nul + 1] === 1;
  const languageEnd = data.indexOf(0, nul + 3);
  const translatedEnd = languageEnd < 0 ? -1 : data.indexOf(0, languageEnd + 1);
  if (translatedEnd < 0) throw new GyozaError("format", `iTXt chunk "${keyword}" is cut short`);
  let body = data.subarray(translatedEnd + 1);
  if (compressed) body = inflateText(body, `iTXt chunk "${keyword}"`);
  const { text, valid } = decodeUtf8(body);
  return { keyword, text, encoding: valid ? "utf-8" : "utf-8 (invalid sequences replaced)" };
}

function decodeNarrowText(bytes: Uint8Array): { text: string; encoding: string } {
  if (isAscii(bytes)) return { text: decodeLatin1(bytes), encoding: "latin-1" };
  const utf8 = decodeUtf8Strict(bytes);
  return utf8 === undefined
    ? { text: decodeLatin1(bytes), encoding: "latin-1" }
    : { text: utf8, encoding: "utf-8 in tEXt" };
}

/** Chunk type and body for `keyword: text` the way PIL writes it: tEXt when Latin-1, else uncompressed iTXt. */
export function encodePngText(keyword: string, text: string): { type: PngTextType; data: Uint8Array } {
  if (keyword.length < 1 || keyword.length > 79 || !isLatin1(keyword) || keyword.includes("\0")) {
    throw new GyozaError("usage", `"${keyword}" cannot be a PNG text keyword (1-79 Latin-1 characters)`);
  }
  const key = Buffer.from(keyword, "latin1");
  if (isLatin1(text)) {
    return { type: "tEXt", data: Buffer.concat([key, Buffer.from([0]), Buffer.from(text, "latin1")]) };
  }
  // keyword \0, compression flag 0, method 0, empty language tag \0, empty translated keyword \0
  const header = Buffer.from([0, 0, 0, 0, 0]);
  return { type: "iTXt", data: Buffer.concat([key, header, Buffer.from(text, "utf8")]) };
}
