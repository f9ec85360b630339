/**
 * Makes a safetensors `__metadata__` readable: modelspec fields grouped, and the JSON strings that
 * A1111 (`sd_merge_recipe`, `sd_merge_models`), supermerger, kohya (`ss_*`) and gyoza store decoded.
 * Values that are not valid JSON stay strings; nothing is ever evaluated.
 */
export interface DecodedMetadata {
  modelspec: Record<string, string>;
  /** A1111 / supermerger `sd_merge_recipe`, decoded. */
  mergeRecipe?: unknown;
  /** A1111 `sd_merge_models`: sha256 → {name, legacy_hash, sd_merge_recipe}. */
  mergeModels?: unknown;
  /** sd-mecha's recipe text. */
  mechaRecipe?: string;
  /** gyoza's own recipe, decoded. */
  gyozaRecipe?: unknown;
  /** Which tool wrote the merge recipe, when one is present. */
  mergeTool?: "a1111" | "supermerger" | "sd-mecha" | "gyoza";
  /** Every other key, JSON-looking values decoded. */
  other: Record<string, unknown>;
}

/** Decodes a value that looks like JSON; anything else (or a parse failure) stays the raw string. */
export function decodeJsonString(value: string): unknown {
  const trimmed = value.trimStart();
  if (!trimmed.startsWith("{") && !trimmed.startsWith("[")) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

export function decodeMetadata(metadata: Readonly<Record<string, string>>): DecodedMetadata {
  const decoded: DecodedMetadata = { modelspec: {}, other: {} };
  for (const [key, value] of Object.entries(metadata)) {
    if (key.startsWith("modelspec.")) decoded.modelspec[key.slice("modelspec.".length)] = value;
    else if (key === "sd_merge_recipe") decoded.mergeRecipe = decodeJsonString(value);
    else if (key === "sd_merge_models") decoded.mergeModels = decodeJsonString(value);
    else if (key === "mecha_recipe") decoded.mechaRecipe = value;
    else if (key === "gyoza_recipe") decoded.gyozaRecipe = decodeJsonString(value);
    else decoded.other[key] = decodeJsonString(value);
  }
  if (decoded.gyozaRecipe !== undefined) decoded.mergeTool = "gyoza";
  else if (decoded.mechaRecipe !== undefined) decoded.mergeTool = "sd-mecha";
  else if (decoded.mergeRecipe !== undefined) {
    const type = (decoded.mergeRecipe as { type?: unknown } | null)?.type;
    decoded.mergeTool = type === "sd-webui-supermerger" ? "supermerger" : "a1111";
  }
  return decoded;
}
