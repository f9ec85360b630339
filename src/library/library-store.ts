import type { FileHashes } from "../hash/index.js";
import { CivitaiVersionLinker } from "./civitai-versions.js";
import type { FileIdentity, FileKind } from "./identify-file.js";
import type { LibraryDatabase } from "./open-library.js";
import { ProvenanceLinker } from "./provenance-versions.js";
import type { SidecarFact, SidecarSource } from "./read-sidecars.js";

/**
 * Facts `gyoza library fetch` stored from Civitai's API. No sidecar on disk backs them, so a scan
 * keeps them while the file's content (its sha256) is unchanged; fetch replaces only these.
 */
export const CIVITAI_API_SOURCE: SidecarSource = "civitai-api";

/** A `files` row as SQLite returns it. */
export interface FileRow {
  id: number;
  path: string;
  size: number;
  mtime_ms: number;
  inode: number;
  missing: 0 | 1;
  kind: FileKind;
  unreadable_reason: string | null;
  architecture: string | null;
  family: string | null;
  components: string | null;
  civitai_type: string | null;
  fp: string | null;
  size_kind: string | null;
  format: string | null;
  baked_vae: 0 | 1 | null;
  first_seen_at: string;
  scanned_at: string;
  hashed_at: string | null;
}

/** A `hashes` row: Civitai's uppercase forms, plus kohya's full AutoV3 and A1111's legacy hash. */
export interface HashRow {
  file_id: number;
  sha256: string;
  autov1: string | null;
  autov2: string;
  autov3: string;
  autov3_full: string;
  blake3: string;
  crc32: string;
  crc32_civitai: string;
  a1111_model_hash: string | null;
}

/** A model → version a file belongs to. */
export interface FileVersionRow {
  model_name: string;
  model_type: string | null;
  civitai_model_id: number | null;
  version_name: string | null;
  base_model: string | null;
  civitai_version_id: number | null;
  source: string;
}

export interface SidecarFactRow {
  file_id: number;
  source: string;
  sidecar_path: string;
  fact: string;
  value: string;
}

/** What a scan learned about one file on disk, written in one transaction. */
export interface ScannedFile {
  path: string;
  size: number;
  mtimeMs: number;
  inode: number;
  identity: FileIdentity;
  /** Undefined when the file could not be hashed (then it is unreadable). */
  hashes: FileHashes | undefined;
  sidecars: SidecarFact[];
}

/**
 * The library's reads and writes as prepared statements with typed rows: the queries are few and
 * fixed, SQLite's own SQL says exactly what runs, and better-sqlite3 is synchronous, so a query
 * builder (Kysely) would add a dependency and an async dialect adapter for no gain here.
 */
export class LibraryStore {
  private readonly statements;
  private readonly versionLinker: CivitaiVersionLinker;
  private readonly provenanceLinker: ProvenanceLinker;

  constructor(readonly db: LibraryDatabase) {
    this.versionLinker = new CivitaiVersionLinker(db);
    this.provenanceLinker = new ProvenanceLinker(db);
    this.statements = {
      addRoot: db.prepare<[string, string]>("INSERT OR IGNORE INTO roots (path, added_at) VALUES (?, ?)"),
      roots: db.prepare<[], { path: string }>("SELECT path FROM roots ORDER BY path"),
      fileByPath: db.prepare<[string], FileRow>("SELECT * FROM files WHERE path = ?"),
      fileById: db.prepare<[number], FileRow>("SELECT * FROM files WHERE id = ?"),
      filesUnder: db.prepare<{ folder: string; prefix: string }, FileRow>(
        "SELECT * FROM files WHERE path = @folder OR substr(path, 1, length(@prefix)) = @prefix",
      ),
      missingBySha256: db.prepare<[string], FileRow>(
        "SELECT files.* FROM files JOIN hashes ON hashes.file_id = files.id WHERE files.missing = 1 AND hashes.sha256 = ? ORDER BY files.id LIMIT 1",
      ),
      markMissing: db.prepare<[number]>("UPDATE files SET missing = 1 WHERE id = ?"),
      markSeen: db.prepare<[string, number]>("UPDATE files SET scanned_at = ?, missing = 0 WHERE id = ?"),
      insertFile: db.prepare<FileValues>(
        `INSERT INTO files (path, size, mtime_ms, inode, missing, kind, unreadable_reason, architecture, family,
           components, civitai_type, fp, size_kind, format, baked_vae, first_seen_at, scanned_at, hashed_at)
         VALUES (@path, @size, @mtime_ms, @inode, 0, @kind, @unreadable_reason, @architecture, @family,
           @components, @civitai_type, @fp, @size_kind, @format, @baked_vae, @now, @now, @hashed_at)`,
      ),
      updateFile: db.prepare<FileValues & { id: number }>(
        `UPDATE files SET path = @path, size = @size, mtime_ms = @mtime_ms, inode = @inode, missing = 0,
           kind = @kind, unreadable_reason = @unreadable_reason, architecture = @architecture, family = @family,
           components = @components, civitai_type = @civitai_type, fp = @fp, size_kind = @size_kind,
           format = @format, baked_vae = @baked_vae, scanned_at = @now, hashed_at = @hashed_at
         WHERE id = @id`,
      ),
      deleteHashes: db.prepare<[number]>("DELETE FROM hashes WHERE file_id = ?"),
      insertHashes: db.prepare<HashRow>(
        `INSERT INTO hashes (file_id, sha256, autov1, autov2, autov3, autov3_full, blake3, crc32, crc32_civitai,
           a1111_model_hash)
         VALUES (@file_id, @sha256, @autov1, @autov2, @autov3, @autov3_full, @blake3, @crc32, @crc32_civitai,
           @a1111_model_hash)`,
      ),
      hashesOf: db.prepare<[number], HashRow>("SELECT * FROM hashes WHERE file_id = ?"),
      versionsOf: db.prepare<[number], FileVersionRow>(
        `SELECT models.name AS model_name, models.type AS model_type, models.civitai_model_id,
           versions.name AS version_name, versions.base_model, versions.civitai_version_id, versions.source
         FROM version_files
           JOIN versions ON versions.id = version_files.version_id
           JOIN models ON models.id = versions.model_id
         WHERE version_files.file_id = ?
         ORDER BY versions.id DESC`,
      ),
      deleteSidecarFacts: db.prepare<[number]>("DELETE FROM sidecar_facts WHERE file_id = ?"),
      insertSidecarFact: db.prepare<SidecarFactRow>(
        `INSERT OR REPLACE INTO sidecar_facts (file_id, source, sidecar_path, fact, value)
         VALUES (@file_id, @source, @sidecar_path, @fact, @value)`,
      ),
      sidecarFactsOf: db.prepare<[number], SidecarFactRow>(
        "SELECT * FROM sidecar_facts WHERE file_id = ? ORDER BY source, fact",
      ),
    };
  }

  addRoot(path: string): void {
    this.statements.addRoot.run(path, new Date().toISOString());
  }

  roots(): string[] {
    return this.statements.roots.all().map((row) => row.path);
  }

  fileByPath(path: string): FileRow | undefined {
    return this.statements.fileByPath.get(path);
  }

  fileById(id: number): FileRow | undefined {
    return this.statements.fileById.get(id);
  }

  /** Files at `folder` or anywhere below it (`folder` absolute, without a trailing separator). */
  filesUnder(folder: string): FileRow[] {
    return this.statements.filesUnder.all({ folder, prefix: `${folder}/` });
  }

  /** The models and versions a file belongs to, newest link first. */
  versionsOf(fileId: number): FileVersionRow[] {
    return this.statements.versionsOf.all(fileId);
  }

  hashesOf(fileId: number): HashRow | undefined {
    return this.statements.hashesOf.get(fileId);
  }

  sidecarFactsOf(fileId: number): SidecarFactRow[] {
    return this.statements.sidecarFactsOf.all(fileId);
  }

  markMissing(fileId: number): void {
    this.statements.markMissing.run(fileId);
  }

  /** Unchanged files seen again: only their scan time moves (one transaction for them all). */
  markSeen(fileIds: readonly number[]): void {
    const now = new Date().toISOString();
    this.db
      .transaction(() => {
        for (const id of fileIds) this.statements.markSeen.run(now, id);
      })
      .immediate();
  }

  /**
   * Replaces the facts a file's sidecars gave (one transaction); what Civitai's API said about the
   * file (`library fetch`) stays.
   */
  replaceSidecarFacts(fileId: number, facts: readonly SidecarFact[]): void {
    this.db
      .transaction(() => this.writeSidecarFacts(fileId, [...facts, ...this.apiFactsOf(fileId)]))
      .immediate();
  }

  /** Replaces what Civitai's API said about a file (one transaction); its sidecars' facts stay. */
  replaceApiFacts(fileId: number, facts: readonly SidecarFact[]): void {
    this.db
      .transaction(() => {
        const sidecars = this.storedFacts(fileId).filter((fact) => fact.source !== CIVITAI_API_SOURCE);
        this.writeSidecarFacts(fileId, [...sidecars, ...facts]);
      })
      .immediate();
  }

  private apiFactsOf(fileId: number): SidecarFact[] {
    return this.storedFacts(fileId).filter((fact) => fact.source === CIVITAI_API_SOURCE);
  }

  private storedFacts(fileId: number): SidecarFact[] {
    return this.sidecarFactsOf(fileId).map((row) => ({
      source: row.source as SidecarSource,
      sidecarPath: row.sidecar_path,
      fact: row.fact,
      value: JSON.parse(row.value) as unknown,
    }));
  }

  private writeSidecarFacts(fileId: number, facts: readonly SidecarFact[]): void {
    this.versionLinker.link(fileId, facts);
    // a sidecar that appears or goes away decides whether the file's provenance makes its own version
    this.provenanceLinker.relink(fileId);
    this.statements.deleteSidecarFacts.run(fileId);
    for (const fact of facts) {
      this.statements.insertSidecarFact.run({
        file_id: fileId,
        source: fact.source,
        sidecar_path: fact.sidecarPath,
        fact: fact.fact,
        value: JSON.stringify(fact.value),
      });
    }
  }

  /**
   * Writes everything a scan learned about one file in one IMMEDIATE transaction, so an interrupted
   * scan leaves each file either fully recorded or as it was. The row is the one at this path, else
   * a missing file with the same sha256 (the file moved), else a new one. Returns the row id and
   * whether it was a move.
   */
  writeScannedFile(scanned: ScannedFile): { id: number; moved: boolean } {
    const write = this.db.transaction(() => {
      const now = new Date().toISOString();
      const values = fileValues(scanned, now);
      let existing = this.statements.fileByPath.get(scanned.path);
      let moved = false;
      if (!existing && scanned.hashes?.sha256) {
        existing = this.statements.missingBySha256.get(scanned.hashes.sha256);
        moved = existing !== undefined;
      }
      let id: number;
      // Civitai's answer was about these bytes: it stays while the sha256 does (a move included)
      let apiFacts: SidecarFact[] = [];
      if (existing) {
        id = existing.id;
        const sameBytes =
          scanned.hashes?.sha256 !== undefined &&
          this.statements.hashesOf.get(id)?.sha256 === scanned.hashes.sha256;
        if (sameBytes) apiFacts = this.apiFactsOf(id);
        this.statements.updateFile.run({ ...values, id });
      } else {
        id = Number(this.statements.insertFile.run(values).lastInsertRowid);
      }
      this.statements.deleteHashes.run(id);
      if (scanned.hashes) this.statements.insertHashes.run(hashRow(id, scanned.hashes));
      this.provenanceLinker.write(id, scanned.identity.provenance);
      this.writeSidecarFacts(id, [...scanned.sidecars, ...apiFacts]);
      return { id, moved };
    });
    return write.immediate();
  }
}

type FileValues = Omit<FileRow, "id" | "missing" | "first_seen_at" | "scanned_at"> & { now: string };

function fileValues(scanned: ScannedFile, now: string): FileValues {
  const { identity } = scanned;
  return {
    path: scanned.path,
    size: scanned.size,
    mtime_ms: scanned.mtimeMs,
    inode: scanned.inode,
    kind: identity.kind,
    unreadable_reason: identity.unreadableReason,
    architecture: identity.architecture,
    family: identity.family,
    components: JSON.stringify(identity.components),
    civitai_type: identity.civitaiType,
    fp: identity.fp,
    size_kind: identity.sizeKind,
    format: identity.format,
    baked_vae: identity.bakedVae === null ? null : identity.bakedVae ? 1 : 0,
    now,
    hashed_at: scanned.hashes ? now : null,
  };
}

function hashRow(fileId: number, hashes: FileHashes): HashRow {
  const need = (value: string | undefined, name: string): string => {
    if (value === undefined) throw new Error(`internal: the ${name} hash was not computed`);
    return value;
  };
  return {
    file_id: fileId,
    sha256: need(hashes.sha256, "sha256"),
    autov1: hashes.autoV1 ?? null,
    autov2: need(hashes.autoV2, "autov2"),
    autov3: need(hashes.autoV3, "autov3"),
    autov3_full: need(hashes.autoV3Full, "autov3"),
    blake3: need(hashes.blake3, "blake3"),
    crc32: need(hashes.crc32, "crc32"),
    crc32_civitai: need(hashes.crc32Civitai, "crc32"),
    a1111_model_hash: hashes.a1111?.modelHash ?? null,
  };
}
