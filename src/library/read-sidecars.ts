import { readFile, stat } from "node:fs/promises";
import { basename, extname, join } from "node:path";

/** Which tool wrote a sidecar. */
export type SidecarSource =
  | "civitai-helper"
  | "stability-matrix"
  | "lora-manager"
  | "a1111"
  | "preview"
  | "civitai-api"; // not a sidecar: Civitai's answer, asked by `gyoza library fetch`

/**
 * One fact another tool left beside a model file. `fact` uses Civitai's field names where one
 * exists (`baseModel`, `trainedWords`, `tags`); `value` is any JSON value.
 */
export interface SidecarFact {
  source: SidecarSource;
  sidecarPath: string;
  fact: string;
  value: unknown;
}

/** A sidecar larger than this is not a sidecar (descriptions are a few KB of HTML): it is skipped. */
export const MAX_SIDECAR_BYTES = 16 * 1024 * 1024;

/** Preview images A1111, Civitai Helper and Stability Matrix write: `{name}.preview.png` and the like. */
const PREVIEW_SUFFIXES = [".preview.png", ".preview.jpeg", ".preview.jpg", ".preview.webp", ".png", ".jpg"];

/**
 * Reads the sidecars of a model file (never writes them): Civitai Helper's `.civitai.info` (the
 * Civitai API's model-version JSON), Stability Matrix's `.cm-info.json` (its ConnectedModelInfo),
 * ComfyUI-Lora-Manager's `.metadata.json`,
 * A1111's `{name}.json` (the extra-networks user metadata) and preview images. A sidecar that is
 * not JSON gives one `error` fact with the reason. `siblings`: the names of the files in the model's
 * folder, when the caller has listed it.
 */
export async function readSidecars(
  modelPath: string,
  siblings?: ReadonlySet<string>,
): Promise<SidecarFact[]> {
  const stem = join(modelPath, "..", basename(modelPath, extname(modelPath)));
  // Given the folder's file names, a re-scan of hundreds of files skips a stat per absent sidecar.
  const mayExist = (path: string): boolean => siblings === undefined || siblings.has(basename(path));
  const facts: SidecarFact[] = [];
  const readers: [string, SidecarSource, (json: Record<string, unknown>) => Record<string, unknown>][] = [
    [`${stem}.civitai.info`, "civitai-helper", factsFromCivitaiInfo],
    [`${stem}.cm-info.json`, "stability-matrix", stabilityMatrixFacts],
    [`${stem}.metadata.json`, "lora-manager", loraManagerFacts],
    [`${stem}.json`, "a1111", a1111Facts],
  ];
  for (const [sidecarPath, source, extract] of readers) {
    if (!mayExist(sidecarPath)) continue;
    const json = await readJsonSidecar(sidecarPath);
    if (json === undefined) continue;
    facts.push(
      ...sidecarFactsOf(source, sidecarPath, typeof json === "string" ? { error: json } : extract(json)),
    );
  }
  for (const suffix of PREVIEW_SUFFIXES) {
    const previewPath = `${stem}${suffix}`;
    if (mayExist(previewPath) && (await isFile(previewPath))) {
      facts.push({ source: "preview", sidecarPath: previewPath, fact: "preview", value: previewPath });
      break;
    }
  }
  return facts;
}

/** One fact per field that has a value (undefined, null and "" say nothing). */
export function sidecarFactsOf(
  source: SidecarSource,
  sidecarPath: string,
  found: Record<string, unknown>,
): SidecarFact[] {
  return Object.entries(found)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([fact, value]) => ({ source, sidecarPath, fact, value }));
}

/**
 * The facts in the Civitai API's model-version object (`/api/v1/model-versions/by-hash/{hash}`), as
 * Civitai Helper saves it in `.civitai.info` and `gyoza library fetch` receives it. Pure: any JSON
 * object in, only well-typed fields out.
 */
export function factsFromCivitaiInfo(json: Record<string, unknown>): Record<string, unknown> {
  const model = objectOr(json.model);
  return {
    civitaiModelId: integerOr(json.modelId),
    civitaiVersionId: integerOr(json.id),
    modelName: stringOr(model.name),
    versionName: stringOr(json.name),
    modelType: stringOr(model.type),
    baseModel: stringOr(json.baseModel),
    trainedWords: stringsOr(json.trainedWords),
    tags: stringsOr(model.tags),
    description: stringOr(json.description) ?? stringOr(model.description),
    publishedAt: stringOr(json.publishedAt) ?? stringOr(json.createdAt),
  };
}

/** Stability Matrix's ConnectedModelInfo (.NET, PascalCase; camelCase accepted too). */
function stabilityMatrixFacts(json: Record<string, unknown>): Record<string, unknown> {
  const field = (name: string): unknown => json[name] ?? json[name.charAt(0).toLowerCase() + name.slice(1)];
  return {
    civitaiModelId: integerOr(field("ModelId")),
    civitaiVersionId: integerOr(field("VersionId")),
    modelName: stringOr(field("ModelName")),
    versionName: stringOr(field("VersionName")),
    modelType: stringOr(field("ModelType")),
    baseModel: stringOr(field("BaseModel")),
    trainedWords: stringsOr(field("TrainedWords")),
    tags: stringsOr(field("Tags")),
    description: stringOr(field("VersionDescription")) ?? stringOr(field("ModelDescription")),
  };
}

/**
 * ComfyUI-Lora-Manager's `{name}.metadata.json`: its own fields (snake_case) around the Civitai
 * model-version JSON under `civitai`.
 */
function loraManagerFacts(json: Record<string, unknown>): Record<string, unknown> {
  const civitai = objectOr(json.civitai);
  const fromCivitai = Object.keys(civitai).length > 0 ? factsFromCivitaiInfo(civitai) : {};
  return {
    ...fromCivitai,
    modelName: stringOr(json.model_name) ?? fromCivitai.modelName,
    baseModel: stringOr(civitai.baseModel) ?? stringOr(json.base_model),
    tags: stringsOr(json.tags) ?? fromCivitai.tags,
    description: stringOr(json.modelDescription) || fromCivitai.description,
    notes: stringOr(json.notes),
  };
}

/** A1111's extra-networks user metadata (the "edit metadata" dialog of a card). */
function a1111Facts(json: Record<string, unknown>): Record<string, unknown> {
  const weight = json["preferred weight"];
  return {
    description: stringOr(json.description),
    activationText: stringOr(json["activation text"]),
    preferredWeight: typeof weight === "number" && weight !== 0 ? weight : undefined,
    sdVersion: stringOr(json["sd version"]),
    negativeText: stringOr(json["negative text"]),
    notes: stringOr(json.notes),
  };
}

/** The parsed object, a string with the reason it could not be read, or undefined when absent. */
async function readJsonSidecar(path: string): Promise<Record<string, unknown> | string | undefined> {
  let bytes: Buffer;
  try {
    const stats = await stat(path);
    if (!stats.isFile()) return undefined;
    if (stats.size > MAX_SIDECAR_BYTES) return `larger than ${MAX_SIDECAR_BYTES} bytes`;
    bytes = await readFile(path);
  } catch {
    return undefined;
  }
  try {
    const parsed: unknown = JSON.parse(bytes.toString("utf8"));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "not a JSON object";
    return parsed as Record<string, unknown>;
  } catch (error) {
    return `not JSON: ${(error as Error).message}`;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

function objectOr(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function stringOr(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function integerOr(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) ? value : undefined;
}

/** Strings, or Civitai's `{name}` tag objects, as a list of strings. */
function stringsOr(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const strings = value.flatMap((item) => {
    if (typeof item === "string") return [item];
    const name = objectOr(item).name;
    return typeof name === "string" ? [name] : [];
  });
  return strings.length > 0 ? strings : undefined;
}
