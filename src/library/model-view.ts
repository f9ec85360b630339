import { basename, extname } from "node:path";
import { stringify } from "yaml";
import { type AutomixOrigin, readAutomixOrigin } from "../automix/automix-origin.js";
import type { GenerationInfo } from "../image/generators/generation-info.js";
import { describeGyozaStep, type GyozaStepRecord, ownField } from "../lineage/gyoza-steps.js";
import { asObject, describeMergeRecipe } from "../lineage/merge-recipes.js";
import { type Recipe, recipeFromData, saveRecipe } from "../recipe/index.js";
import type { RecipeFormat, RecordedParent } from "./file-provenance.js";
import type { ImageResourceKind, ImageResourceRow, ImageRow } from "./library-images.js";
import { nameStem } from "./library-images.js";
import type { LibraryStore } from "./library-store.js";
import {
  fileIdsOfVersion,
  type ModelRow,
  resolveModel,
  userFieldsOf,
  type VersionRow,
  versionById,
  versionsOfModel,
} from "./library-versions.js";
import type { FileParentRow, FileProvenanceRow } from "./provenance-versions.js";
import { type CivitaiHashes, civitaiHashes } from "./query-library.js";

/**
 * One model as a model page or `library show MODEL` presents it: the model, its versions newest
 * first, each with its files and their hashes, how it was made (recipe, parents), its sample
 * images with their generation data, and how to use it. Plain JSON-able data (no Dates, no
 * classes); fields are only ever added, never renamed.
 */
export interface ModelView {
  model: ModelInfo;
  /** Newest first: by creation/publication date, then Civitai version id, then when the library met it. */
  versions: VersionView[];
}

export interface ModelInfo {
  id: number;
  name: string;
  /** Civitai's model type (Checkpoint, LORA, …), when a sidecar says. */
  type: string | null;
  civitaiModelId: number | null;
  /** Where the model came from: a sidecar tool (`civitai-helper`, …), `provenance` or `user`. */
  source: string;
  /** Every version's tags, once each. */
  tags: string[];
  /** The newest version's description (Markdown or Civitai's HTML, as written). */
  description: string | null;
}

export interface VersionView {
  id: number;
  name: string | null;
  baseModel: string | null;
  civitaiVersionId: number | null;
  source: string;
  /** ISO 8601, when known. */
  createdAt: string | null;
  files: VersionFileView[];
  /** How the version was made, from its first file that records a recipe. */
  recipe: RecipeView | null;
  /** The models it was made from, linked to library files by hash when present. */
  parents: ParentView[];
  /** The automix study trial it is the best candidate of (`gyoza automix best --merge`), when recorded. */
  automix: AutomixOrigin | null;
  images: ImageView[];
  usage: UsageView;
  /** Where each shown field came from: `user`, `provenance`, a sidecar tool, `detected`, `library`. */
  sources: Record<string, string>;
}

/** Civitai's file fields: type, metadata {fp, size, format}, hashes. */
export interface VersionFileView {
  id: number;
  path: string;
  name: string;
  missing: boolean;
  kind: string;
  /** Civitai's files[].type (Model, Pruned Model, VAE, …). */
  type: string | null;
  sizeBytes: number;
  fp: string | null;
  /** full | pruned */
  size: string | null;
  /** SafeTensor | PickleTensor */
  format: string | null;
  architecture: string | null;
  family: string | null;
  bakedVae: boolean | null;
  unreadableReason: string | null;
  hashes: CivitaiHashes | null;
}

export interface RecipeView {
  format: RecipeFormat;
  /** The library file whose metadata holds it. */
  fileId: number;
  /** As recorded (gyoza's and A1111's are JSON, sd-mecha's its own text). */
  text: string;
  /** The recorded JSON as an object; null for sd-mecha's text or unparsable records. */
  data: Record<string, unknown> | null;
  /** A gyoza recipe that passes gyoza's own checks, else null (an older or damaged record). */
  recipe: Recipe | null;
  /** gyoza's recipe as YAML (its canonical form when valid), else null. */
  yaml: string | null;
  /** A gyoza recipe's steps, each on one line with its method and weights. */
  steps: GyozaStepRecord[];
  /** One line: "gyoza: final = weighted_sum(…)", "supermerger: Weight sum, alpha 0.5". */
  summary: string;
}

export interface ParentView extends RecordedParent {
  /** Library files carrying one of those hashes, with the model/version they belong to. */
  local: LinkedFile[];
}

export interface LinkedFile {
  fileId: number;
  path: string;
  missing: boolean;
  model: string | null;
  version: string | null;
  /** Which hash matched (SHA256, AutoV2, AutoV3, AutoV1, BLAKE3), `file name`, or `civitai version id`. */
  via: string;
}

export interface ImageView {
  id: number;
  path: string;
  missing: boolean;
  container: string | null;
  width: number | null;
  height: number | null;
  unreadableReason: string | null;
  /** The full generation data as the image readers parse it; null when the image carries none. */
  generation: GenerationInfo | null;
  /** What the image names, each linked to library files when they are here. */
  resources: ImageResourceView[];
}

export interface ImageResourceView {
  kind: ImageResourceKind;
  name: string | null;
  hash: string | null;
  weight: number | null;
  civitaiVersionId: number | null;
  local: LinkedFile[];
}

/** How to use the version: what a model page's "usage" box and a generator need. */
export interface UsageView {
  clipSkip: number | null;
  /** Recommended or baked VAE (file name). */
  vae: string | null;
  negativeEmbeddings: string[];
  trainedWords: string[];
  description: string | null;
  tags: string[];
  license: string | null;
  /** A sidecar's notes / activation text / preferred weight, as written. */
  notes: string | null;
}

/** Sidecar tools in the order their word wins (as for grouping). */
const SIDECAR_ORDER = ["civitai-api", "civitai-helper", "stability-matrix", "lora-manager", "a1111"];

/** Civitai's base-model names for the families gyoza detects (shown as `detected`). */
const BASE_BY_FAMILY: Readonly<Record<string, string>> = { sd1: "SD 1.5", sd2: "SD 2.1", sdxl: "SDXL 1.0" };

/**
 * The model a reference names (`MODEL`, `MODEL@VERSION`, a Civitai model id, or a file path or
 * hash prefix of one of its files) as a `ModelView`. With a version named, only that version.
 */
export function modelPage(store: LibraryStore, modelRef: string): ModelView {
  const { model, version } = resolveModel(store, modelRef);
  return modelView(store, model, version ? [version] : versionsOfModel(store, model.id));
}

/** A model with the given versions (all of them when omitted), newest first. */
export function modelView(store: LibraryStore, model: ModelRow, versions?: readonly VersionRow[]): ModelView {
  const views = (versions ?? versionsOfModel(store, model.id)).map((row) => versionView(store, row));
  views.sort(newestFirst);
  const tags = [...new Set(views.flatMap((view) => view.usage.tags))];
  return {
    model: {
      id: model.id,
      name: model.name,
      type: model.type,
      civitaiModelId: model.civitai_model_id,
      source: model.source,
      tags,
      description: views.find((view) => view.usage.description !== null)?.usage.description ?? null,
    },
    versions: views,
  };
}

function newestFirst(a: VersionView, b: VersionView): number {
  const time = (view: VersionView): number => {
    const parsed = view.createdAt === null ? Number.NaN : Date.parse(view.createdAt);
    return Number.isNaN(parsed) ? Number.NEGATIVE_INFINITY : parsed;
  };
  return time(b) - time(a) || (b.civitaiVersionId ?? -1) - (a.civitaiVersionId ?? -1) || b.id - a.id || 0;
}

/** One version by its id, as `ModelView.versions` shows it. */
export function versionViewById(store: LibraryStore, versionId: number): VersionView | undefined {
  const row = versionById(store, versionId);
  return row ? versionView(store, row) : undefined;
}

function versionView(store: LibraryStore, row: VersionRow): VersionView {
  const fileIds = fileIdsOfVersion(store, row.id);
  const files = fileIds.map((id) => fileView(store, id)).filter((file) => file !== undefined);
  const provenances = fileIds
    .map((id) =>
      store.db
        .prepare<[number], FileProvenanceRow>("SELECT * FROM file_provenance WHERE file_id = ?")
        .get(id),
    )
    .filter((value): value is FileProvenanceRow => value !== undefined);
  const withRecipe = provenances.find((value) => value.recipe !== null);
  const sidecar = sidecarFields(store, fileIds);
  const user = userFieldsOf(store, row.id);
  const modelspec = (provenances.find((value) => value.modelspec !== null)?.modelspec ?? null) as
    | string
    | null;
  const spec = modelspec ? ((asObject(modelspec) ?? {}) as Record<string, unknown>) : {};
  const sources: Record<string, string> = {};
  const pick = <T>(field: string, candidates: [string, T | null | undefined][]): T | null => {
    for (const [source, value] of candidates) {
      if (value === null || value === undefined) continue;
      if (Array.isArray(value) && value.length === 0) continue;
      sources[field] = source;
      return value;
    }
    return null;
  };
  const firstProvenance = (key: keyof FileProvenanceRow) =>
    provenances.map((value) => value[key]).find((value) => value !== null && value !== undefined) ?? null;
  const recipe = withRecipe
    ? recipeView(
        withRecipe,
        files.find((file) => file.id === withRecipe.file_id),
      )
    : null;
  const family = files.find((file) => file.family !== null)?.family ?? null;
  const name = pick<string>("name", [
    ["user", user.name],
    [row.source, row.name],
  ]);
  const usage: UsageView = {
    clipSkip: pick<number>("clipSkip", [
      ["user", user.clipSkip],
      ["provenance", firstProvenance("clip_skip") as number | null],
    ]),
    vae: pick<string>("vae", [
      ["user", user.vae],
      ["provenance", recipe?.data ? bakedVaeOf(recipe.data) : null],
    ]),
    negativeEmbeddings: pick<string[]>("negativeEmbeddings", [["user", user.negativeEmbeddings]]) ?? [],
    trainedWords:
      pick<string[]>("trainedWords", [
        ["user", user.trainedWords],
        [sidecar.trainedWords?.source ?? "", sidecar.trainedWords?.value as string[] | undefined],
        ["provenance", splitList(spec.trigger_phrase)],
      ]) ?? [],
    description: pick<string>("description", [
      ["user", user.description],
      [sidecar.description?.source ?? "", sidecar.description?.value as string | undefined],
      ["provenance", firstProvenance("description") as string | null],
    ]),
    tags:
      pick<string[]>("tags", [
        ["user", user.tags],
        [sidecar.tags?.source ?? "", sidecar.tags?.value as string[] | undefined],
        ["provenance", splitList(spec.tags)],
      ]) ?? [],
    license: pick<string>("license", [
      ["user", user.license],
      ["provenance", typeof spec.license === "string" ? spec.license : null],
    ]),
    notes: pick<string>("notes", [
      [sidecar.notes?.source ?? "", sidecar.notes?.value as string | undefined],
      [sidecar.activationText?.source ?? "", sidecar.activationText?.value as string | undefined],
    ]),
  };
  const baseModel = pick<string>("baseModel", [
    ["user", user.baseModel],
    [row.source, row.base_model],
    [sidecar.baseModel?.source ?? "", sidecar.baseModel?.value as string | undefined],
    ["detected", family ? BASE_BY_FAMILY[family] : undefined],
  ]);
  const createdAt = pick<string>("createdAt", [
    ["user", user.createdAt],
    [row.source, row.created_at],
    [sidecar.publishedAt?.source ?? "", sidecar.publishedAt?.value as string | undefined],
    ["provenance", firstProvenance("created_at") as string | null],
  ]);
  const parentRows = withRecipe ? parentsOf(store, withRecipe.file_id) : [];
  return {
    id: row.id,
    name,
    baseModel,
    civitaiVersionId: row.civitai_version_id,
    source: row.source,
    createdAt,
    files,
    recipe,
    parents: parentRows.map((parent) => parentView(store, parent)),
    automix: readAutomixOrigin(firstProvenance("automix") as string | null),
    images: imagesOfVersion(store, row, fileIds),
    usage,
    sources,
  };
}

function fileView(store: LibraryStore, id: number): VersionFileView | undefined {
  const row = store.fileById(id);
  if (!row) return undefined;
  const hashes = store.hashesOf(id);
  return {
    id,
    path: row.path,
    name: basename(row.path),
    missing: row.missing === 1,
    kind: row.kind,
    type: row.civitai_type,
    sizeBytes: row.size,
    fp: row.fp,
    size: row.size_kind,
    format: row.format,
    architecture: row.architecture,
    family: row.family,
    bakedVae: row.baked_vae === null ? null : row.baked_vae === 1,
    unreadableReason: row.unreadable_reason,
    hashes: hashes ? civitaiHashes(hashes) : null,
  };
}

/** The preferred sidecar's value of each fact over the version's files. */
function sidecarFields(
  store: LibraryStore,
  fileIds: readonly number[],
): Record<string, { source: string; value: unknown } | undefined> {
  const found: Record<string, { source: string; value: unknown; rank: number }> = {};
  for (const id of fileIds) {
    for (const fact of store.sidecarFactsOf(id)) {
      const rank = SIDECAR_ORDER.indexOf(fact.source);
      if (rank < 0) continue;
      const known = found[fact.fact];
      if (known && known.rank <= rank) continue;
      let value: unknown;
      try {
        value = JSON.parse(fact.value);
      } catch {
        continue;
      }
      found[fact.fact] = { source: fact.source, value, rank };
    }
  }
  return found;
}

function splitList(value: unknown): string[] | null {
  if (typeof value !== "string") return null;
  const items = value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
  return items.length > 0 ? items : null;
}

/** The VAE file a gyoza recipe baked in, by name. */
function bakedVaeOf(recipe: Record<string, unknown>): string | null {
  const vae = asObject(ownField(asObject(ownField(recipe, "output")) ?? {}, "vae"));
  if (vae?.policy !== "bake" || typeof vae.file !== "string") return null;
  return basename(vae.file.replace(/\\/g, "/"));
}

function recipeView(provenance: FileProvenanceRow, file: VersionFileView | undefined): RecipeView {
  const text = provenance.recipe!;
  const format = (provenance.recipe_format ?? "unknown") as RecipeFormat;
  const data = format === "sd-mecha" ? null : asObject(text);
  let recipe: Recipe | null = null;
  let yaml: string | null = null;
  const steps: GyozaStepRecord[] = [];
  let summary: string = format;
  if (format === "gyoza" && data) {
    try {
      recipe = recipeFromData(structuredClone(data));
    } catch {
      recipe = null;
    }
    try {
      yaml = recipe ? saveRecipe(recipe) : stringify(data, { lineWidth: 0 });
    } catch {
      yaml = null;
    }
    const stepTable = asObject(ownField(data, "steps")) ?? {};
    for (const name of Object.keys(stepTable)) {
      const step = asObject(ownField(stepTable, name));
      if (step) steps.push(describeGyozaStep(name, step));
    }
    summary = steps.length > 0 ? steps.map((step) => step.summary).join("; ") : "gyoza: no steps recorded";
  } else if (data) {
    summary = describeMergeRecipe(data);
  } else if (format === "sd-mecha") {
    summary = "sd-mecha recipe";
  }
  return { format, fileId: file?.id ?? provenance.file_id, text, data, recipe, yaml, steps, summary };
}

function parentsOf(store: LibraryStore, fileId: number): FileParentRow[] {
  return store.db
    .prepare<[number], FileParentRow>("SELECT * FROM file_parents WHERE file_id = ? ORDER BY position")
    .all(fileId);
}

function parentView(store: LibraryStore, parent: FileParentRow): ParentView {
  const local: LinkedFile[] = [];
  const seen = new Set<number>();
  const add = (via: string, rows: { file_id: number }[]): void => {
    for (const { file_id } of rows) {
      if (seen.has(file_id)) continue;
      seen.add(file_id);
      const linked = linkedFile(store, file_id, via);
      if (linked) local.push(linked);
    }
  };
  const byColumn = (column: string, value: string | null): { file_id: number }[] =>
    value === null
      ? []
      : store.db
          .prepare<[string], { file_id: number }>(
            `SELECT file_id FROM hashes WHERE ${column} = ? ORDER BY file_id`,
          )
          .all(value);
  add("SHA256", byColumn("sha256", parent.sha256));
  add("AutoV3", byColumn("autov3_full", parent.autov3));
  add("AutoV2", byColumn("autov2", parent.autov2 ?? parent.sha256?.slice(0, 10) ?? null));
  add("AutoV1", byColumn("upper(a1111_model_hash)", parent.legacy_hash));
  return {
    role: parent.role,
    name: parent.name,
    sha256: parent.sha256,
    autov3: parent.autov3,
    autov2: parent.autov2 ?? parent.sha256?.slice(0, 10) ?? null,
    legacyHash: parent.legacy_hash,
    local,
  };
}

function linkedFile(store: LibraryStore, fileId: number, via: string): LinkedFile | undefined {
  const row = store.fileById(fileId);
  if (!row) return undefined;
  const version = store.versionsOf(fileId)[0];
  return {
    fileId,
    path: row.path,
    missing: row.missing === 1,
    model: version?.model_name ?? null,
    version: version?.version_name ?? null,
    via,
  };
}

/** Every hash form of a file an image may record, by name. */
function hashForms(store: LibraryStore, fileId: number): [string, string][] {
  const row = store.hashesOf(fileId);
  if (!row) return [];
  const forms: [string, string | null][] = [
    ["SHA256", row.sha256],
    ["AutoV2", row.autov2],
    ["AutoV3", row.autov3],
    ["AutoV3", row.autov3_full],
    ["AutoV1", row.autov1],
    ["AutoV1", row.a1111_model_hash?.toUpperCase() ?? null],
    ["BLAKE3", row.blake3],
  ];
  return forms.filter((form): form is [string, string] => form[1] !== null);
}

/** Images naming one of the version's files (by any hash, or by file name when they record none) or its Civitai version id. */
function imagesOfVersion(store: LibraryStore, version: VersionRow, fileIds: readonly number[]): ImageView[] {
  const ids = new Set<number>();
  const byHash = store.db.prepare<[string], { image_id: number }>(
    "SELECT image_id FROM image_resources WHERE hash = ?",
  );
  const byStem = store.db.prepare<[string], { image_id: number }>(
    "SELECT image_id FROM image_resources WHERE hash IS NULL AND name_stem = ?",
  );
  for (const fileId of fileIds) {
    for (const [, value] of hashForms(store, fileId))
      for (const row of byHash.all(value)) ids.add(row.image_id);
    const path = store.fileById(fileId)?.path;
    const stem = path ? nameStem(basename(path, extname(path))) : null;
    if (stem) for (const row of byStem.all(stem)) ids.add(row.image_id);
  }
  if (version.civitai_version_id !== null) {
    for (const row of store.db
      .prepare<[number], { image_id: number }>(
        "SELECT image_id FROM image_resources WHERE civitai_version_id = ?",
      )
      .all(version.civitai_version_id))
      ids.add(row.image_id);
  }
  return [...ids]
    .map((id) => imageViewById(store, id))
    .filter((view): view is ImageView => view !== undefined)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** One library image with its generation data and what it names, linked to library files. */
export function imageViewById(store: LibraryStore, imageId: number): ImageView | undefined {
  const row = store.db.prepare<[number], ImageRow>("SELECT * FROM images WHERE id = ?").get(imageId);
  if (!row) return undefined;
  const resources = store.db
    .prepare<[number], ImageResourceRow>("SELECT * FROM image_resources WHERE image_id = ? ORDER BY position")
    .all(imageId);
  let generation: GenerationInfo | null = null;
  if (row.generation !== null) {
    try {
      generation = JSON.parse(row.generation) as GenerationInfo;
    } catch {
      generation = null;
    }
  }
  return {
    id: row.id,
    path: row.path,
    missing: row.missing === 1,
    container: row.container,
    width: row.width,
    height: row.height,
    unreadableReason: row.unreadable_reason,
    generation,
    resources: resources.map((resource) => ({
      kind: resource.kind,
      name: resource.name,
      hash: resource.hash,
      weight: resource.weight,
      civitaiVersionId: resource.civitai_version_id,
      local: resourceFiles(store, resource),
    })),
  };
}

/** Library files a resource names: by hash (any form), else by file name, or the files of the Civitai version it names. */
export function resourceFiles(store: LibraryStore, resource: ImageResourceRow): LinkedFile[] {
  const linked: LinkedFile[] = [];
  const seen = new Set<number>();
  const add = (fileId: number, via: string): void => {
    if (seen.has(fileId)) return;
    seen.add(fileId);
    const file = linkedFile(store, fileId, via);
    if (file) linked.push(file);
  };
  const hash = resource.hash;
  if (hash !== null) {
    const columns: [string, string][] = [
      ["sha256", "SHA256"],
      ["autov2", "AutoV2"],
      ["autov3", "AutoV3"],
      ["autov3_full", "AutoV3"],
      ["autov1", "AutoV1"],
      ["upper(a1111_model_hash)", "AutoV1"],
      ["blake3", "BLAKE3"],
    ];
    for (const [column, via] of columns) {
      for (const row of store.db
        .prepare<[string], { file_id: number }>(
          `SELECT file_id FROM hashes WHERE ${column} = ? ORDER BY file_id`,
        )
        .all(hash))
        add(row.file_id, via);
    }
  } else if (resource.name_stem !== null) {
    // SQLite narrows to paths ending /STEM.something (no row per library file reaches JS); the stem rule decides
    const escaped = resource.name_stem.replace(/[\\%_]/g, (char) => `\\${char}`);
    const candidates = store.db
      .prepare<[string], { id: number; path: string }>(
        "SELECT id, path FROM files WHERE lower(path) LIKE ? ESCAPE '\\' ORDER BY id",
      )
      .all(`%/${escaped}.%`);
    for (const row of candidates) {
      if (nameStem(basename(row.path)) === resource.name_stem) add(row.id, "file name");
    }
  }
  if (resource.civitai_version_id !== null) {
    for (const row of store.db
      .prepare<[number], { file_id: number }>(
        `SELECT version_files.file_id FROM versions JOIN version_files ON version_files.version_id = versions.id
         WHERE versions.civitai_version_id = ? ORDER BY version_files.file_id`,
      )
      .all(resource.civitai_version_id))
      add(row.file_id, "civitai version id");
  }
  return linked;
}
