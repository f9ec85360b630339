/**
 * A1111 "infotext", the text behind the `parameters` PNG chunk and the JPEG/WebP UserComment:
 *
 *     <prompt, possibly multi-line>
 *     Negative prompt: <negative, possibly multi-line>
 *     Steps: 28, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x768, Model hash: 0123456789, ...
 *
 * Parsing follows `parse_generation_parameters` and formatting `create_infotext` of
 * stable-diffusion-webui (modules/infotext_utils.py, modules/processing.py). Prompts keep their exact
 * text and every value keeps how it was written, so `formatInfotext(parseInfotext(t)) === t` for the
 * text A1111 and its forks write.
 */

export interface InfotextParameter {
  key: string;
  /** The value, unquoted. For `Hashes: {...}` and `Civitai resources: [...]`, the JSON text. */
  value: string;
  /**
   * The value exactly as written, only when A1111's quoting would write it differently (unquoted JSON
   * such as `Hashes: {...}`, other escapes); formatting uses it while it still means `value`.
   */
  raw?: string;
}

export interface Infotext {
  /** Exact text before the `Negative prompt:` line (or before the parameter line). */
  prompt: string;
  /** Exact text after `Negative prompt: `, or undefined when there is no such line. */
  negativePrompt: string | undefined;
  /** The last line's `key: value` pairs in order. A key that equals its value was written bare. */
  parameters: InfotextParameter[];
}

const NEGATIVE_PREFIX = "Negative prompt:";
/** A1111's `re_param`, with Python's Unicode `\w`; used only to count pairs (the ≥3 rule). */
const A1111_PARAM_PATTERN = /\s*([\p{L}\p{N}_][\p{L}\p{N}_ \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/gu;
const KEY_PATTERN = /^[\p{L}\p{N}_][\p{L}\p{N}_ \-/]+/u;
/** A1111 reads the last line as parameters only when it holds at least this many pairs. */
const MIN_PARAMETER_PAIRS = 3;

/** A1111's `quote`: JSON-quote a value that holds `,`, `:` or a newline. */
export function quoteInfotextValue(value: string): string {
  if (!value.includes(",") && !value.includes("\n") && !value.includes(":")) return value;
  return JSON.stringify(value);
}

/** A1111's `unquote`: a value in double quotes is a JSON string; anything else stays as written. */
export function unquoteInfotextValue(raw: string): string {
  if (raw.length < 2 || !raw.startsWith('"') || !raw.endsWith('"')) return raw;
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === "string" ? value : raw;
  } catch {
    return raw;
  }
}

export function countA1111Pairs(line: string): number {
  return [...line.matchAll(A1111_PARAM_PATTERN)].length;
}

export function parseInfotext(text: string): Infotext {
  const lines = text.trim().split("\n");
  let parameterLine = lines.pop() ?? "";
  if (countA1111Pairs(parameterLine) < MIN_PARAMETER_PAIRS) {
    lines.push(parameterLine);
    parameterLine = "";
  }
  const negativeAt = lines.findIndex((line) => line.trim().startsWith(NEGATIVE_PREFIX));
  const promptLines = negativeAt < 0 ? lines : lines.slice(0, negativeAt);
  let negativePrompt: string | undefined;
  if (negativeAt >= 0) {
    const first = lines[negativeAt]!.trimStart().slice(NEGATIVE_PREFIX.length);
    const rest = lines.slice(negativeAt + 1);
    negativePrompt = [first.startsWith(" ") ? first.slice(1) : first, ...rest].join("\n");
  }
  return { prompt: promptLines.join("\n"), negativePrompt, parameters: parseParameterLine(parameterLine) };
}

/** Splits `k: v, k: "quoted, value", Hashes: {"a": "b"}` into pairs, keeping each value as written. */
export function parseParameterLine(line: string): InfotextParameter[] {
  const parameters: InfotextParameter[] = [];
  let at = 0;
  while (at < line.length) {
    while (at < line.length && /\s/.test(line[at]!)) at++;
    if (at >= line.length) break;
    const key = KEY_PATTERN.exec(line.slice(at))?.[0];
    if (key === undefined || line[at + key.length] !== ":") {
      const end = nextComma(line, at);
      const bare = line.slice(at, end);
      parameters.push({ key: bare, value: bare });
      at = end + 1;
      continue;
    }
    at += key.length + 1;
    while (at < line.length && line[at] === " ") at++;
    const end = valueEnd(line, at);
    const raw = line.slice(at, end);
    const value = raw.startsWith('"') ? unquoteInfotextValue(raw) : raw;
    parameters.push(raw === quoteInfotextValue(value) ? { key, value } : { key, value, raw });
    at = nextComma(line, end) + 1;
  }
  return parameters;
}

function nextComma(line: string, from: number): number {
  const comma = line.indexOf(",", from);
  return comma < 0 ? line.length : comma;
}

/** End of a value starting at `start`: a JSON string, a balanced JSON object/array, or up to the next comma. */
function valueEnd(line: string, start: number): number {
  const first = line[start];
  if (first === '"') {
    for (let i = start + 1; i < line.length; i++) {
      if (line[i] === "\\") i++;
      else if (line[i] === '"') return i + 1;
    }
    return nextComma(line, start);
  }
  if (first === "{" || first === "[") {
    let depth = 0;
    for (let i = start; i < line.length; i++) {
      const c = line[i];
      if (c === '"') {
        for (i++; i < line.length && line[i] !== '"'; i++) if (line[i] === "\\") i++;
      } else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
  }
  return nextComma(line, start);
}

function formatParameter({ key, value, raw }: InfotextParameter): string {
  if (key === value && raw === undefined) return key;
  const keepsRaw = raw !== undefined && (raw.startsWith('"') ? unquoteInfotextValue(raw) : raw) === value;
  return `${key}: ${keepsRaw ? raw : quoteInfotextValue(value)}`;
}

/** A1111's `create_infotext` layout: prompt, `Negative prompt:` line when present, then the pairs joined by ", ". */
export function formatInfotext(info: Infotext): string {
  const negative = info.negativePrompt === undefined ? "" : `\n${NEGATIVE_PREFIX} ${info.negativePrompt}`;
  const parameters = info.parameters.map(formatParameter).join(", ");
  return `${info.prompt}${negative}\n${parameters}`.trim();
}

/** The value of the first parameter named `key`. */
export function infotextValue(info: Infotext, key: string): string | undefined {
  return info.parameters.find((parameter) => parameter.key === key)?.value;
}
