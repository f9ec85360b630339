/** Text decoding helpers shared by the PNG, EXIF and JPEG readers. */

const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf8Lenient = new TextDecoder("utf-8");

export function decodeLatin1(bytes: Uint8Array): string {
  // TextDecoder("latin1") is windows-1252 per the WHATWG spec; PNG tEXt is true ISO-8859-1.
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

export function isAscii(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte > 0x7f) return false;
  return true;
}

/** UTF-8 if the bytes are valid UTF-8, else undefined. */
export function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return undefined;
  }
}

/** UTF-8 with U+FFFD for invalid sequences; `valid` says whether any were replaced. */
export function decodeUtf8(bytes: Uint8Array): { text: string; valid: boolean } {
  const strict = decodeUtf8Strict(bytes);
  return strict === undefined
    ? { text: utf8Lenient.decode(bytes), valid: false }
    : { text: strict, valid: true };
}

export function encodeUtf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** True when every character fits in one ISO-8859-1 byte (then PIL writes tEXt, else iTXt). */
export function isLatin1(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

export function encodeLatin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
