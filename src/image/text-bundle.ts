import { toComfyGraph } from "./generators/comfyui-graph.js";
import { parseJsonObject } from "./generators/lenient-json.js";
import { countA1111Pairs } from "./infotext.js";

/**
 * PNG keywords that identify generation metadata. When EXIF has to carry several of them (NovelAI's
 * WebP does this), they travel as one JSON object of strings in the UserComment.
 */
export const GENERATION_KEYWORDS: ReadonlySet<string> = new Set([
  "parameters",
  "prompt",
  "workflow",
  "Comment",
  "Description",
  "Software",
  "Source",
  "Title",
  "Generation time",
  "invokeai_metadata",
  "invokeai_graph",
  "Dream",
  "sd-metadata",
  "fooocus_scheme",
  "parameters-json",
  "smproj",
]);

/** The fields of a UserComment that is a JSON object of strings naming a known keyword, else undefined. */
export function unwrapTextBundle(text: string | undefined): Record<string, string> | undefined {
  const object = parseJsonObject(text);
  if (!object) return undefined;
  const entries = Object.entries(object);
  if (entries.length === 0 || !entries.every(([, value]) => typeof value === "string")) return undefined;
  if (!entries.some(([key]) => GENERATION_KEYWORDS.has(key))) return undefined;
  return Object.fromEntries(entries) as Record<string, string>;
}

export function looksLikeInfotext(text: string | undefined): boolean {
  if (text === undefined || text.trimStart().startsWith("{")) return false;
  const lines = text.trim().split("\n");
  return countA1111Pairs(lines[lines.length - 1]!) >= 3;
}

const COMFY_LABEL = /^\s*(prompt|workflow)\s*:\s*/i;

/**
 * The container-independent view of an image's metadata: PNG keywords as keys, with EXIF conventions
 * undone (UserComment infotext → `parameters`, Make/Model `prompt:`/`workflow:` → `prompt`/`workflow`,
 * a JSON bundle → its fields). `unmapped` lists the EXIF keys that have no such meaning.
 */
export function toLogicalTexts(texts: Record<string, string>): {
  logical: Record<string, string>;
  unmapped: string[];
} {
  const logical: Record<string, string> = {};
  const unmapped: string[] = [];
  const put = (key: string, value: string) => {
    if (!(key in logical)) logical[key] = value;
  };
  for (const [key, value] of Object.entries(texts)) {
    if (!key.startsWith("exif_") && key !== "jpeg_comment" && key !== "xmp") {
      put(key, value);
      continue;
    }
    const label = COMFY_LABEL.exec(value);
    const bundle = key === "exif_user_comment" ? unwrapTextBundle(value) : undefined;
    const comfy = key === "exif_user_comment" ? parseJsonObject(value) : undefined;
    if (key === "xmp") put("XML:com.adobe.xmp", value);
    else if (bundle) for (const [k, v] of Object.entries(bundle)) put(k, v);
    else if ((key === "exif_user_comment" || key === "jpeg_comment") && looksLikeInfotext(value))
      put("parameters", value);
    else if (comfy && ("prompt" in comfy || "workflow" in comfy)) {
      for (const kind of ["prompt", "workflow"] as const) {
        const graph = comfy[kind];
        if (graph !== undefined) put(kind, typeof graph === "string" ? graph : JSON.stringify(graph));
      }
    } else if (comfy && toComfyGraph(comfy)) {
      // Civitai's generator: the UserComment is the API graph itself, which a PNG holds as `prompt`.
      put("prompt", value);
    } else if (comfy) {
      // SwarmUI's JSON: what it writes as `parameters` in a PNG.
      put("parameters", value);
    } else if (["exif_make", "exif_model", "exif_image_description"].includes(key) && label) {
      put(label[1]!.toLowerCase(), value.slice(label[0].length));
    } else if (key === "jpeg_comment") put("Comment", value);
    else unmapped.push(key);
  }
  return { logical, unmapped };
}
