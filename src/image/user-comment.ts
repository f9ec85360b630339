import { decodeUtf8 } from "./text-codec.js";

/** EXIF 2.32 §4.6.5: UserComment starts with an 8-byte character code naming the charset. */
const UNICODE_PREFIX = "UNICODE\0";
const ASCII_PREFIX = "ASCII\0\0\0";
const JIS_PREFIX = "JIS\0\0\0\0\0";
const UNDEFINED_PREFIX = "\0\0\0\0\0\0\0\0";
const PREFIX_BYTES = 8;

export interface DecodedUserComment {
  text: string;
  /** e.g. `UNICODE, UTF-16BE`, `ASCII`, `no charset prefix, UTF-8`. */
  how: string;
  warnings: string[];
}

function prefixOf(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes.subarray(0, PREFIX_BYTES));
}

function stripTrailingNuls(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0) end--;
  return text.slice(0, end);
}

/**
 * UTF-16 byte order is not the TIFF byte order in practice (Civitai writes UTF-16BE inside a
 * little-endian TIFF, SwarmUI UTF-16LE): pick the order whose high bytes are zero more often,
 * falling back to the TIFF order when the text gives no hint (all CJK, say).
 */
function guessUtf16LittleEndian(payload: Uint8Array, tiffLittleEndian: boolean): boolean {
  let evenZeros = 0;
  let oddZeros = 0;
  for (let i = 0; i + 1 < payload.length; i += 2) {
    if (payload[i] === 0) evenZeros++;
    if (payload[i + 1] === 0) oddZeros++;
  }
  if (evenZeros === oddZeros) return tiffLittleEndian;
  return oddZeros > evenZeros;
}

function decodeUtf16(payload: Uint8Array, littleEndian: boolean, warnings: string[]): string {
  let bytes = payload;
  if (bytes.length % 2 === 1) {
    warnings.push(`UTF-16 UserComment has an odd length (${bytes.length} bytes); the last byte was dropped`);
    bytes = bytes.subarray(0, bytes.length - 1);
  }
  const encoding = littleEndian ? "utf-16le" : "utf-16be";
  try {
    return new TextDecoder(encoding, { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    warnings.push("UserComment holds invalid UTF-16 (unpaired surrogates); they were replaced by U+FFFD");
    return new TextDecoder(encoding).decode(bytes);
  }
}

/** Decodes an EXIF UserComment value (any TIFF type: some writers store it as ASCII without a prefix). */
export function decodeUserComment(value: Uint8Array, tiffLittleEndian: boolean): DecodedUserComment {
  const warnings: string[] = [];
  const prefix = prefixOf(value);
  const payload = value.subarray(PREFIX_BYTES);
  if (prefix === UNICODE_PREFIX) {
    const littleEndian = guessUtf16LittleEndian(payload, tiffLittleEndian);
    const text = stripTrailingNuls(decodeUtf16(payload, littleEndian, warnings));
    return { text, how: `UNICODE, UTF-16${littleEndian ? "LE" : "BE"}`, warnings };
  }
  if (prefix === JIS_PREFIX) {
    const text = stripTrailingNuls(new TextDecoder("shift_jis").decode(payload));
    return { text, how: "JIS", warnings };
  }
  if (prefix === ASCII_PREFIX || prefix === UNDEFINED_PREFIX) {
    // NovelAI writes UTF-8 JSON behind the ASCII prefix.
    const { text, valid } = decodeUtf8(payload);
    if (!valid) warnings.push("UserComment is not valid UTF-8; invalid bytes were replaced");
    return {
      text: stripTrailingNuls(text),
      how: prefix === ASCII_PREFIX ? "ASCII" : "undefined charset",
      warnings,
    };
  }
  const { text, valid } = decodeUtf8(value);
  if (!valid) warnings.push("UserComment is not valid UTF-8; invalid bytes were replaced");
  return { text: stripTrailingNuls(text), how: "no charset prefix, UTF-8", warnings };
}

/** `UNICODE\0` + UTF-16BE, exactly what A1111 writes through piexif (`UserComment.dump(encoding="unicode")`). */
export function encodeUserComment(text: string): Uint8Array {
  const out = new Uint8Array(PREFIX_BYTES + text.length * 2);
  for (let i = 0; i < PREFIX_BYTES; i++) out[i] = UNICODE_PREFIX.charCodeAt(i);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out[PREFIX_BYTES + 2 * i] = unit >> 8;
    out[PREFIX_BYTES + 2 * i + 1] = unit & 0xff;
  }
  return out;
}

export function trimTrailingNuls(text: string): string {
  return stripTrailingNuls(text);
}
