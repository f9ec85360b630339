import { basename, extname, resolve } from "node:path";
import { GyozaError } from "../errors.js";
import type { LibraryStore } from "./library-store.js";
import { fileIdsByHashPrefix } from "./query-library.js";

/** A `models` row. */
export interface ModelRow {
  id: number;
  name: string;
  type: string | null;
  civitai_model_id: number | null;
  source: string;
}

/** A `versions` row. */
export interface VersionRow {
  id: number;
  model_id: number;
  name: string | null;
  base_model: string | null;
  civitai_version_id: number | null;
  source: string;
  origin_file_id: number | null;
  created_at: string | null;
}

/** The fields `library set` (and `setVersionFields`) can give a version, with their JSON value types. */
export interface VersionFields {
  name?: string;
  baseModel?: string;
  clipSkip?: number;
  /** Recommended VAE: a file name (or path) as the user gives it. */
  vae?: string;
  negativeEmbeddings?: string[];
  trainedWords?: string[];
  /** Markdown. */
  description?: string;
  tags?: string[];
  license?: string;
  /** When the version was made or published (ISO 8601): orders versions newest first. */
  createdAt?: string;
}

export const VERSION_FIELD_NAMES = [
  "name",
  "baseModel",
  "clipSkip",
  "vae",
  "negativeEmbeddings",
  "trainedWords",
  "description",
  "tags",
  "license",
  "createdAt",
] as const satisfies readonly (keyof VersionFields)[];

/** A model and, when the reference names one, a version of it. */
export interface ResolvedModel {
  model: ModelRow;
  version: VersionRow | undefined;
}

/** `MODEL@VERSION` → its parts (split at the last `@`; a name may hold one, a version name rarely does). */
export function parseModelRef(ref: string): { model: string; version: string | undefined } {
  const at = ref.lastIndexOf("@");
  if (at <= 0 || at === ref.length - 1) return { model: ref, version: undefined };
  return { model: ref.slice(0, at), version: ref.slice(at + 1) };
}

export function modelById(store: LibraryStore, id: number): ModelRow | undefined {
  return store.db.prepare<[number], ModelRow>("SELECT * FROM models WHERE id = ?").get(id);
}

export function versionById(store: LibraryStore, id: number): VersionRow | undefined {
  return store.db.prepare<[number], VersionRow>("SELECT * FROM versions WHERE id = ?").get(id);
}

/** Every model of the library (from sidecars, provenance or grouped by hand), sorted by name. */
export function listModels(store: LibraryStore): ModelRow[] {
  return store.db.prepare<[], ModelRow>("SELECT * FROM models ORDER BY name COLLATE NOCASE, id").all();
}

/** A model's versions, unordered (see `orderVersions`). */
export function versionsOfModel(store: LibraryStore, modelId: number): VersionRow[] {
  return store.db
    .prepare<[number], VersionRow>("SELECT * FROM versions WHERE model_id = ? ORDER BY id")
    .all(modelId);
}

/** The ids of a version's files. */
export function fileIdsOfVersion(store: LibraryStore, versionId: number): number[] {
  return store.db
    .prepare<[number], { file_id: number }>(
      "SELECT file_id FROM version_files WHERE version_id = ? ORDER BY file_id",
    )
    .all(versionId)
    .map((row) => row.file_id);
}

/**
 * Finds a model by `MODEL[@VERSION]`: the model's name (case-insensitive), its Civitai model id, or
 * a library file (path or hash prefix) whose model it is; the version by name or Civitai version id.
 */
export function resolveModel(store: LibraryStore, ref: string): ResolvedModel {
  const { db } = store;
  const parts = parseModelRef(ref);
  const tryRef = (modelPart: string, versionPart: string | undefined): ResolvedModel | undefined => {
    const byName = db
      .prepare<[string], ModelRow>("SELECT * FROM models WHERE name = ? COLLATE NOCASE ORDER BY id")
      .all(modelPart);
    let models = byName;
    if (models.length === 0 && /^\d+$/.test(modelPart)) {
      models = db
        .prepare<[number], ModelRow>("SELECT * FROM models WHERE civitai_model_id = ?")
        .all(Number(modelPart));
    }
    if (models.length === 0) {
      const fileId = fileIdOf(store, modelPart);
      if (fileId === undefined) return undefined;
      const version = db
        .prepare<[number], VersionRow>(
          `SELECT versions.* FROM version_files JOIN versions ON versions.id = version_files.version_id
           WHERE version_files.file_id = ? ORDER BY versions.id DESC LIMIT 1`,
        )
        .get(fileId);
      if (!version) {
        throw new GyozaError("usage", `${modelPart} is in the library but belongs to no model`, {
          fix: "group it: gyoza library group FILE --model NAME",
        });
      }
      models = [modelById(store, version.model_id)!];
      if (versionPart === undefined) return { model: models[0]!, version };
    }
    if (models.length > 1) {
      throw new GyozaError("usage", `${models.length} models are named ${modelPart}`, {
        fix: "give its Civitai model id, or a file of the version",
      });
    }
    const model = models[0]!;
    if (versionPart === undefined) return { model, version: undefined };
    const versions = versionsOfModel(store, model.id);
    const wanted = versionPart.toLowerCase();
    // a name set by hand (library set --name) names the version as well as the one it came with
    const version =
      versions.find((row) => userFieldsOf(store, row.id).name?.toLowerCase() === wanted) ??
      versions.find((row) => row.name?.toLowerCase() === wanted) ??
      versions.find((row) => String(row.civitai_version_id) === versionPart);
    if (!version) {
      const names = versions.map((row) => row.name ?? `#${row.id}`).join(", ");
      throw new GyozaError("usage", `${model.name} has no version ${versionPart}`, {
        fix: `its versions: ${names || "none"}`,
      });
    }
    return { model, version };
  };
  const found =
    (parts.version !== undefined ? tryRef(parts.model, parts.version) : undefined) ?? tryRef(ref, undefined);
  if (!found) {
    throw new GyozaError("usage", `no model, version or file in the library is called ${ref}`, {
      fix: "see `gyoza library list --models` for the models and versions",
    });
  }
  return found;
}

/** A library file by path (as recorded or relative to here) or by a hash prefix naming only it; undefined when none. */
export function fileIdOf(store: LibraryStore, fileOrHash: string): number | undefined {
  const row = store.fileByPath(resolve(fileOrHash)) ?? store.fileByPath(fileOrHash);
  if (row) return row.id;
  if (!/^[0-9a-f]{4,}$/i.test(fileOrHash)) return undefined;
  const ids = fileIdsByHashPrefix(store, fileOrHash);
  if (ids.length > 1) {
    throw new GyozaError("usage", `hash prefix ${fileOrHash} matches ${ids.length} files`, {
      fix: "give more digits",
    });
  }
  return ids[0];
}

/**
 * Puts files into a model's version by hand (`library group`): the model by name (created when
 * none has it, source `user`), the version by name (default: the first file's name without its
 * extension). Each file leaves the other hand-made and provenance-made versions it was in (sidecar
 * links stay: they are what the sidecar says). One transaction.
 */
export function groupFiles(
  store: LibraryStore,
  files: readonly string[],
  target: { model: string; version?: string },
): { model: ModelRow; version: VersionRow } {
  const modelName = target.model.trim();
  if (modelName === "") throw new GyozaError("usage", "the model name is empty", { path: "--model" });
  const fileIds = files.map((file) => {
    const id = fileIdOf(store, file);
    if (id === undefined) {
      throw new GyozaError("usage", `${file} is not in the library`, {
        fix: "add its folder first: gyoza library add FOLDER",
      });
    }
    return id;
  });
  if (fileIds.length === 0) throw new GyozaError("usage", "no files to group");
  const { db } = store;
  const group = db.transaction(() => {
    let model = db
      .prepare<[string], ModelRow>("SELECT * FROM models WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT 1")
      .get(modelName);
    if (!model) {
      const id = Number(
        db.prepare("INSERT INTO models (name, type, source) VALUES (?, NULL, 'user')").run(modelName)
          .lastInsertRowid,
      );
      model = modelById(store, id)!;
    }
    const firstPath = store.fileById(fileIds[0]!)!.path;
    const versionName = target.version?.trim() || basename(firstPath, extname(firstPath));
    let version = versionsOfModel(store, model.id).find(
      (row) => row.name?.toLowerCase() === versionName.toLowerCase(),
    );
    if (!version) {
      const id = Number(
        db
          .prepare("INSERT INTO versions (model_id, name, source, created_at) VALUES (?, ?, 'user', ?)")
          .run(model.id, versionName, new Date().toISOString()).lastInsertRowid,
      );
      version = versionById(store, id)!;
    }
    for (const fileId of fileIds) {
      const others = db
        .prepare<[number, number], { id: number; model_id: number }>(
          `SELECT versions.id, versions.model_id FROM version_files JOIN versions ON versions.id = version_files.version_id
           WHERE version_files.file_id = ? AND versions.id <> ? AND versions.source IN ('user', 'provenance')`,
        )
        .all(fileId, version.id);
      for (const other of others) {
        db.prepare("DELETE FROM version_files WHERE version_id = ? AND file_id = ?").run(other.id, fileId);
        dropIfEmpty(store, other.id, other.model_id);
      }
      db.prepare("INSERT OR IGNORE INTO version_files (version_id, file_id) VALUES (?, ?)").run(
        version.id,
        fileId,
      );
    }
    return { model, version };
  });
  return group.immediate();
}

/** A hand-made or provenance-made version left with no files goes, and its model with it when it has no versions left. */
function dropIfEmpty(store: LibraryStore, versionId: number, modelId: number): void {
  const { db } = store;
  const left = db
    .prepare<[number], { n: number }>("SELECT count(*) AS n FROM version_files WHERE version_id = ?")
    .get(versionId)!.n;
  if (left > 0) return;
  db.prepare("DELETE FROM versions WHERE id = ? AND source IN ('user', 'provenance')").run(versionId);
  db.prepare(
    `DELETE FROM models WHERE id = ? AND civitai_model_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM versions WHERE versions.model_id = models.id)`,
  ).run(modelId);
}

/**
 * Sets fields of a version by hand (`library set`): kept apart from what scans write, so a later
 * re-scan never overwrites them. `undefined` leaves a field as it is; `null` clears the hand-set
 * value (the sidecar's or provenance's shows again). A model reference without a version names its
 * only version.
 */
export function setVersionFields(
  store: LibraryStore,
  ref: string,
  fields: { [K in keyof VersionFields]?: VersionFields[K] | null },
): { model: ModelRow; version: VersionRow } {
  const resolved = resolveModel(store, ref);
  let version = resolved.version;
  if (!version) {
    const versions = versionsOfModel(store, resolved.model.id);
    if (versions.length !== 1) {
      throw new GyozaError(
        "usage",
        `${resolved.model.name} has ${versions.length} versions: say which (MODEL@VERSION)`,
        { fix: `its versions: ${versions.map((row) => row.name ?? `#${row.id}`).join(", ")}` },
      );
    }
    version = versions[0]!;
  }
  checkFields(fields);
  const { db } = store;
  const chosen = version;
  db.transaction(() => {
    const now = new Date().toISOString();
    for (const name of VERSION_FIELD_NAMES) {
      const value = fields[name];
      if (value === undefined) continue;
      if (value === null) {
        db.prepare("DELETE FROM version_fields WHERE version_id = ? AND field = ?").run(chosen.id, name);
        continue;
      }
      db.prepare(
        `INSERT INTO version_fields (version_id, field, value, source, set_at) VALUES (?, ?, ?, 'user', ?)
         ON CONFLICT (version_id, field) DO UPDATE SET value = excluded.value, source = 'user', set_at = excluded.set_at`,
      ).run(chosen.id, name, JSON.stringify(value), now);
    }
  }).immediate();
  return { model: resolved.model, version: chosen };
}

function checkFields(fields: Record<string, unknown>): void {
  const clipSkip = fields.clipSkip;
  if (clipSkip !== undefined && clipSkip !== null) {
    if (typeof clipSkip !== "number" || !Number.isInteger(clipSkip) || clipSkip < 1 || clipSkip > 12) {
      throw new GyozaError("usage", `clip skip ${String(clipSkip)} is not a whole number from 1 to 12`, {
        path: "--clip-skip",
      });
    }
  }
  const createdAt = fields.createdAt;
  if (typeof createdAt === "string" && Number.isNaN(Date.parse(createdAt))) {
    throw new GyozaError("usage", `${createdAt} is not a date`, { path: "--created" });
  }
}

/** The fields set by hand on a version, as stored. */
export function userFieldsOf(store: LibraryStore, versionId: number): Partial<VersionFields> {
  const rows = store.db
    .prepare<[number], { field: string; value: string }>(
      "SELECT field, value FROM version_fields WHERE version_id = ?",
    )
    .all(versionId);
  const fields: Record<string, unknown> = {};
  for (const row of rows) {
    if ((VERSION_FIELD_NAMES as readonly string[]).includes(row.field))
      fields[row.field] = JSON.parse(row.value) as unknown;
  }
  return fields as Partial<VersionFields>;
}

/**
 * Files made from a model (`find --parent`): every file whose recorded parents carry a hash of the
 * given file (path or hash prefix), of any file of the given model, or a hash or name equal to
 * the text given; then, transitively, everything made from those, up to `maxDepth` generations.
 */
export function childrenOf(store: LibraryStore, parent: string, maxDepth = 32): number[] {
  const { db } = store;
  const parentHashes = new Set<string>();
  const parentNames = new Set<string>();
  const addFileHashes = (fileId: number): void => {
    const hashes = store.hashesOf(fileId);
    if (!hashes) return;
    for (const value of [hashes.sha256, hashes.autov2, hashes.autov3_full, hashes.a1111_model_hash])
      if (value) parentHashes.add(value.toUpperCase());
  };
  let seeds: number[] = [];
  const byModel = db
    .prepare<[string], { file_id: number }>(
      `SELECT version_files.file_id FROM models JOIN versions ON versions.model_id = models.id
         JOIN version_files ON version_files.version_id = versions.id WHERE models.name = ? COLLATE NOCASE`,
    )
    .all(parent)
    .map((row) => row.file_id);
  seeds.push(...byModel);
  if (seeds.length === 0) {
    let fileId: number | undefined;
    try {
      fileId = fileIdOf(store, parent);
    } catch {
      fileId = undefined;
    }
    if (fileId !== undefined) seeds.push(fileId);
  }
  for (const id of seeds) addFileHashes(id);
  if (/^[0-9a-f]{8,64}$/i.test(parent)) parentHashes.add(parent.toUpperCase());
  parentNames.add(parent.toLowerCase());
  const found = new Set<number>();
  const direct = (hashes: ReadonlySet<string>, names: ReadonlySet<string>): number[] => {
    const ids = new Set<number>();
    const byHash = db.prepare<{ hash: string }, { file_id: number }>(
      `SELECT file_id FROM file_parents WHERE sha256 = @hash OR autov2 = @hash OR autov3 = @hash
         OR legacy_hash = @hash OR substr(sha256, 1, 10) = @hash`,
    );
    for (const hash of hashes) for (const row of byHash.all({ hash })) ids.add(row.file_id);
    const byName = db.prepare<[], { file_id: number; name: string | null }>(
      "SELECT file_id, name FROM file_parents WHERE name IS NOT NULL",
    );
    if (names.size > 0) {
      for (const row of byName.all()) {
        const name = row.name!.toLowerCase();
        const stem = name.replace(/\.(safetensors|ckpt|pt|bin)$/, "");
        if (names.has(name) || names.has(stem)) ids.add(row.file_id);
      }
    }
    return [...ids];
  };
  let frontier = direct(parentHashes, parentNames);
  for (let depth = 0; depth < maxDepth && frontier.length > 0; depth++) {
    const next = new Set<string>();
    for (const id of frontier) {
      if (found.has(id) || seeds.includes(id)) continue;
      found.add(id);
      const hashes = store.hashesOf(id);
      if (hashes) for (const value of [hashes.sha256, hashes.autov2, hashes.autov3_full]) next.add(value);
    }
    seeds = [...seeds];
    frontier = direct(next, new Set()).filter((id) => !found.has(id));
  }
  return [...found].sort((a, b) => a - b);
}
