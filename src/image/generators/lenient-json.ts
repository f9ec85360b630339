/**
 * JSON.parse that also accepts Python's `NaN`, `Infinity` and `-Infinity` (ComfyUI writes them with
 * `json.dumps`), turning them into null. Returns undefined for text that is not JSON.
 */
export function parseLenientJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // fall through to the NaN-tolerant path
  }
  try {
    return JSON.parse(replaceNonFiniteLiterals(text));
  } catch {
    return undefined;
  }
}

function replaceNonFiniteLiterals(text: string): string {
  let out = "";
  let at = 0;
  while (at < text.length) {
    const c = text[at]!;
    if (c === '"') {
      let end = at + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      out += text.slice(at, end + 1);
      at = end + 1;
      continue;
    }
    const literal = ["-Infinity", "Infinity", "NaN"].find((word) => text.startsWith(word, at));
    if (literal) {
      out += "null";
      at += literal.length;
      continue;
    }
    out += c;
    at++;
  }
  return out;
}

/** Lenient JSON, only when it is an object. */
export function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return undefined;
  const value = parseLenientJson(trimmed);
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
