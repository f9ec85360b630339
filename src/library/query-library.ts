import { basename, resolve } from "node:path";
import { GyozaError } from "../errors.js";
import type { RecordedParent } from "./file-provenance.js";
import type { FileKind } from "./identify-file.js";
import type { FileRow, HashRow, LibraryStore } from "./library-store.js";
import { childrenOf } from "./library-versions.js";
import type { FileParentRow, FileProvenanceRow } from "./provenance-versions.js";

/** The shortest hash prefix `find --hash` and `show` accept: shorter ones match half the library. */
export const MIN_HASH_PREFIX_LENGTH = 4;

/**
 * One library file as `library list/show/find --json` print it. Civitai's names for what Civitai
 * shows (`type`, `metadata {fp, size, format}`, `hashes {SHA256, AutoV1, …}`); the sidecar facts
 * with the tool that wrote each.
 */
export interface LibraryEntry {
  id: number;
  path: string;
  name: string;
  missing: boolean;
  kind: FileKind;
  unreadableReason: string | null;
  architecture: string | null;
  family: string | null;
  components: string[];
  bakedVae: boolean | null;
  sizeBytes: number;
  type: string | null;
  metadata: { fp: string | null; size: string | null; format: string | null };
  hashes: CivitaiHashes | null;
  /** The Civitai models → versions this file belongs to (from sidecars, for now), with their source. */
  versions: {
    model: { name: string; type: string | null; civitaiModelId: number | null };
    name: string | null;
    baseModel: string | null;
    civitaiVersionId: number | null;
    source: string;
  }[];
  sidecars: { source: string; sidecarPath: string; fact: string; value: unknown }[];
  /** How the file was made, from its own metadata (gyoza / A1111 / supermerger / sd-mecha); null when it records nothing. */
  provenance: {
    recipeFormat: string | null;
    title: string | null;
    clipSkip: number | null;
    createdAt: string | null;
    /** The models it was merged from, with the hashes recorded (uppercase). */
    parents: RecordedParent[];
  } | null;
  firstSeenAt: string;
  scannedAt: string;
  hashedAt: string | null;
}

/** `files[].hashes` as Civitai names them, plus kohya's full AutoV3 and the usual CRC32 byte order. */
export interface CivitaiHashes {
  SHA256: string;
  AutoV1: string | null;
  AutoV2: string;
  AutoV3: string;
  BLAKE3: string;
  CRC32: string;
  autoV3Full: string;
  crc32Ieee: string;
}

export interface FindQuery {
  /** Part of the file name, or of a model / version name from a sidecar (case-insensitive). */
  name?: string;
  /** A tag from a sidecar (case-insensitive, whole tag). */
  tag?: string;
  /** Base model from a sidecar ("SD 1.5", "SDXL 1.0"), or the detected family / architecture id. */
  base?: string;
  /** A prefix of any of the six hashes (or kohya's full AutoV3). */
  hash?: string;
  /**
   * Made from this model, directly or through merges of merges: a model name, a library file (path
   * or hash prefix), or a hash or file name as a merge recorded it.
   */
  parent?: string;
}

/** Every file of the library, sorted by path, as `gyoza library list --json` prints them (missing ones too, unless `includeMissing: false`). */
export function listEntries(store: LibraryStore, options: { includeMissing?: boolean } = {}): LibraryEntry[] {
  const rows = store.db
    .prepare<[], FileRow>("SELECT * FROM files ORDER BY path")
    .all()
    .filter((row) => options.includeMissing !== false || row.missing === 0);
  return rows.map((row) => entryOf(store, row));
}

/** Files matching every given criterion, sorted by path. */
export function findEntries(store: LibraryStore, query: FindQuery): LibraryEntry[] {
  const { db } = store;
  const sets: Set<number>[] = [];
  const ids = (sql: string, parameters: Record<string, string>): Set<number> =>
    new Set(
      db
        .prepare<Record<string, string>, { id: number }>(sql)
        .all(parameters)
        .map((row) => row.id),
    );
  if (query.name !== undefined) {
    const needle = query.name.toLowerCase();
    const byFileName = store.db
      .prepare<[], { id: number; path: string }>("SELECT id, path FROM files")
      .all()
      .filter((row) => basename(row.path).toLowerCase().includes(needle))
      .map((row) => row.id);
    const bySidecar = ids(
      `SELECT file_id AS id FROM sidecar_facts
       WHERE fact IN ('modelName', 'versionName') AND instr(lower(json_extract(value, '$')), @needle) > 0`,
      { needle },
    );
    // models and versions from provenance or grouped by hand, and names set by hand
    const byVersion = ids(
      `SELECT version_files.file_id AS id FROM version_files
         JOIN versions ON versions.id = version_files.version_id JOIN models ON models.id = versions.model_id
       WHERE instr(lower(models.name), @needle) > 0 OR instr(lower(coalesce(versions.name, '')), @needle) > 0
       UNION SELECT version_files.file_id FROM version_fields JOIN version_files USING (version_id)
       WHERE version_fields.field = 'name' AND instr(lower(json_extract(version_fields.value, '$')), @needle) > 0`,
      { needle },
    );
    sets.push(new Set([...byFileName, ...bySidecar, ...byVersion]));
  }
  if (query.tag !== undefined) {
    sets.push(
      ids(
        `SELECT DISTINCT file_id AS id FROM sidecar_facts, json_each(sidecar_facts.value)
         WHERE fact = 'tags' AND lower(json_each.value) = lower(@tag)
         UNION SELECT version_files.file_id FROM version_fields JOIN version_files USING (version_id),
           json_each(version_fields.value)
         WHERE version_fields.field = 'tags' AND lower(json_each.value) = lower(@tag)`,
        { tag: query.tag },
      ),
    );
  }
  if (query.base !== undefined) {
    sets.push(
      ids(
        `SELECT file_id AS id FROM sidecar_facts
           WHERE fact IN ('baseModel', 'sdVersion') AND instr(lower(json_extract(value, '$')), lower(@base)) > 0
         UNION SELECT id FROM files WHERE lower(family) = lower(@base) OR lower(architecture) = lower(@base)
         UNION SELECT version_files.file_id FROM version_files JOIN versions ON versions.id = version_files.version_id
         WHERE instr(lower(coalesce(versions.base_model, '')), lower(@base)) > 0
         UNION SELECT version_files.file_id FROM version_fields JOIN version_files USING (version_id)
         WHERE version_fields.field = 'baseModel'
           AND instr(lower(json_extract(version_fields.value, '$')), lower(@base)) > 0`,
        { base: query.base },
      ),
    );
  }
  if (query.hash !== undefined) sets.push(new Set(fileIdsByHashPrefix(store, query.hash)));
  if (query.parent !== undefined) sets.push(new Set(childrenOf(store, query.parent)));
  if (sets.length === 0) return listEntries(store);
  const [first, ...rest] = sets;
  const matching = [...first!].filter((id) => rest.every((set) => set.has(id)));
  return matching
    .map((id) => store.fileById(id))
    .filter((row): row is FileRow => row !== undefined)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((row) => entryOf(store, row));
}

/** One file by its path (as recorded or relative to here) or by a hash prefix that names only it. */
export function showEntry(store: LibraryStore, fileOrHash: string): LibraryEntry {
  const row = store.fileByPath(resolve(fileOrHash)) ?? store.fileByPath(fileOrHash);
  if (row) return entryOf(store, row);
  if (!/^[0-9a-f]+$/i.test(fileOrHash)) {
    throw new GyozaError("usage", `${fileOrHash} is not in the library`, {
      fix: "give a path as `gyoza library list` shows it, or a hash prefix",
    });
  }
  const ids = fileIdsByHashPrefix(store, fileOrHash);
  if (ids.length === 0)
    throw new GyozaError("usage", `no file in the library has a hash starting ${fileOrHash}`);
  if (ids.length > 1) {
    const paths = ids.map((id) => store.fileById(id)?.path).join(", ");
    throw new GyozaError("usage", `hash prefix ${fileOrHash} matches ${ids.length} files: ${paths}`, {
      fix: "give more digits",
    });
  }
  return entryOf(store, store.fileById(ids[0]!)!);
}

export function fileIdsByHashPrefix(store: LibraryStore, prefix: string): number[] {
  if (!/^[0-9a-f]+$/i.test(prefix) || prefix.length < MIN_HASH_PREFIX_LENGTH) {
    throw new GyozaError(
      "usage",
      `"${prefix}" is not a hash prefix of ${MIN_HASH_PREFIX_LENGTH}+ hex digits`,
      {
        path: "--hash",
      },
    );
  }
  // Stored uppercase; the prefix is hex only, so it cannot carry a LIKE wildcard.
  const pattern = `${prefix.toUpperCase()}%`;
  return store.db
    .prepare<{ pattern: string }, { id: number }>(
      `SELECT file_id AS id FROM hashes
       WHERE sha256 LIKE @pattern OR autov1 LIKE @pattern OR autov2 LIKE @pattern OR autov3_full LIKE @pattern
         OR blake3 LIKE @pattern OR crc32_civitai LIKE @pattern OR crc32 LIKE @pattern
         OR a1111_model_hash LIKE @pattern
       ORDER BY file_id`,
    )
    .all({ pattern })
    .map((row) => row.id);
}

function entryOf(store: LibraryStore, row: FileRow): LibraryEntry {
  const hashes = store.hashesOf(row.id);
  return {
    id: row.id,
    path: row.path,
    name: basename(row.path),
    missing: row.missing === 1,
    kind: row.kind,
    unreadableReason: row.unreadable_reason,
    architecture: row.architecture,
    family: row.family,
    components: row.components ? (JSON.parse(row.components) as string[]) : [],
    bakedVae: row.baked_vae === null ? null : row.baked_vae === 1,
    sizeBytes: row.size,
    type: row.civitai_type,
    metadata: { fp: row.fp, size: row.size_kind, format: row.format },
    hashes: hashes ? civitaiHashes(hashes) : null,
    versions: store.versionsOf(row.id).map((version) => ({
      model: { name: version.model_name, type: version.model_type, civitaiModelId: version.civitai_model_id },
      name: version.version_name,
      baseModel: version.base_model,
      civitaiVersionId: version.civitai_version_id,
      source: version.source,
    })),
    sidecars: store.sidecarFactsOf(row.id).map((fact) => ({
      source: fact.source,
      sidecarPath: fact.sidecar_path,
      fact: fact.fact,
      value: JSON.parse(fact.value) as unknown,
    })),
    provenance: provenanceOf(store, row.id),
    firstSeenAt: row.first_seen_at,
    scannedAt: row.scanned_at,
    hashedAt: row.hashed_at,
  };
}

function provenanceOf(store: LibraryStore, fileId: number): LibraryEntry["provenance"] {
  const row = store.db
    .prepare<[number], FileProvenanceRow>("SELECT * FROM file_provenance WHERE file_id = ?")
    .get(fileId);
  if (!row) return null;
  const parents = store.db
    .prepare<[number], FileParentRow>("SELECT * FROM file_parents WHERE file_id = ? ORDER BY position")
    .all(fileId);
  return {
    recipeFormat: row.recipe_format,
    title: row.title,
    clipSkip: row.clip_skip,
    createdAt: row.created_at,
    parents: parents.map((parent) => ({
      role: parent.role,
      name: parent.name,
      sha256: parent.sha256,
      autov3: parent.autov3,
      autov2: parent.autov2,
      legacyHash: parent.legacy_hash,
    })),
  };
}

export function civitaiHashes(row: HashRow): CivitaiHashes {
  return {
    SHA256: row.sha256,
    AutoV1: row.autov1,
    AutoV2: row.autov2,
    AutoV3: row.autov3,
    BLAKE3: row.blake3,
    CRC32: row.crc32_civitai,
    autoV3Full: row.autov3_full,
    crc32Ieee: row.crc32,
  };
}
