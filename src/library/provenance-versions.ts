import { basename, extname } from "node:path";
import { automixOriginText } from "../automix/automix-origin.js";
import type { FileProvenance } from "./file-provenance.js";
import type { LibraryDatabase } from "./open-library.js";

/** A `file_provenance` row. */
export interface FileProvenanceRow {
  file_id: number;
  recipe: string | null;
  recipe_format: string | null;
  title: string | null;
  description: string | null;
  author: string | null;
  clip_skip: number | null;
  created_at: string | null;
  modelspec: string | null;
  /** JSON of the file's AutomixOrigin (automix-origin.ts), when it records one. */
  automix: string | null;
}

/** A `file_parents` row. */
export interface FileParentRow {
  file_id: number;
  position: number;
  role: string | null;
  name: string | null;
  sha256: string | null;
  autov3: string | null;
  autov2: string | null;
  legacy_hash: string | null;
}

/**
 * Records each file's merge provenance and groups a file that nothing else groups into a model and
 * version of its own: model named by its modelspec title (else the file name), one version per
 * file named by the file (source `provenance`). A file a sidecar or the user put in a version is not
 * grouped again here: its provenance still shows through that version.
 */
export class ProvenanceLinker {
  private readonly statements;

  constructor(db: LibraryDatabase) {
    this.statements = {
      deleteProvenance: db.prepare<[number]>("DELETE FROM file_provenance WHERE file_id = ?"),
      deleteParents: db.prepare<[number]>("DELETE FROM file_parents WHERE file_id = ?"),
      insertProvenance: db.prepare<FileProvenanceRow>(
        `INSERT INTO file_provenance (file_id, recipe, recipe_format, title, description, author, clip_skip,
           created_at, modelspec, automix)
         VALUES (@file_id, @recipe, @recipe_format, @title, @description, @author, @clip_skip, @created_at,
           @modelspec, @automix)`,
      ),
      insertParent: db.prepare<FileParentRow>(
        `INSERT INTO file_parents (file_id, position, role, name, sha256, autov3, autov2, legacy_hash)
         VALUES (@file_id, @position, @role, @name, @sha256, @autov3, @autov2, @legacy_hash)`,
      ),
      provenanceOf: db.prepare<[number], FileProvenanceRow>(
        "SELECT * FROM file_provenance WHERE file_id = ?",
      ),
      pathOf: db.prepare<[number], { path: string }>("SELECT path FROM files WHERE id = ?"),
      groupedElsewhere: db.prepare<[number], { n: number }>(
        `SELECT count(*) AS n FROM version_files JOIN versions ON versions.id = version_files.version_id
         WHERE version_files.file_id = ? AND versions.source <> 'provenance'`,
      ),
      originVersion: db.prepare<[number], { id: number; model_id: number }>(
        "SELECT id, model_id FROM versions WHERE origin_file_id = ?",
      ),
      deleteVersion: db.prepare<[number]>("DELETE FROM versions WHERE id = ?"),
      deleteModelIfEmpty: db.prepare<[number]>(
        `DELETE FROM models WHERE id = ? AND civitai_model_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM versions WHERE versions.model_id = models.id)`,
      ),
      modelByName: db.prepare<[string], { id: number }>(
        "SELECT id FROM models WHERE name = ? COLLATE NOCASE AND civitai_model_id IS NULL ORDER BY id LIMIT 1",
      ),
      insertModel: db.prepare<[string]>(
        "INSERT INTO models (name, type, source) VALUES (?, 'Checkpoint', 'provenance')",
      ),
      insertVersion: db.prepare<{
        model_id: number;
        name: string;
        created_at: string | null;
        file_id: number;
      }>(
        `INSERT INTO versions (model_id, name, source, origin_file_id, created_at)
         VALUES (@model_id, @name, 'provenance', @file_id, @created_at)`,
      ),
      updateVersion: db.prepare<{ id: number; model_id: number; name: string; created_at: string | null }>(
        "UPDATE versions SET model_id = @model_id, name = @name, created_at = @created_at WHERE id = @id",
      ),
      link: db.prepare<[number, number]>(
        "INSERT OR IGNORE INTO version_files (version_id, file_id) VALUES (?, ?)",
      ),
    };
  }

  /** Replaces a file's provenance rows. Call inside the transaction that writes the file, then `relink`. */
  write(fileId: number, provenance: FileProvenance | null): void {
    this.statements.deleteProvenance.run(fileId);
    this.statements.deleteParents.run(fileId);
    if (!provenance) return;
    this.statements.insertProvenance.run({
      file_id: fileId,
      recipe: provenance.recipe,
      recipe_format: provenance.recipeFormat,
      title: provenance.title,
      description: provenance.description,
      author: provenance.author,
      clip_skip: provenance.clipSkip,
      created_at: provenance.createdAt,
      modelspec: Object.keys(provenance.modelspec).length > 0 ? JSON.stringify(provenance.modelspec) : null,
      automix: provenance.automix ? automixOriginText(provenance.automix) : null,
    });
    provenance.parents.forEach((parent, position) => {
      this.statements.insertParent.run({
        file_id: fileId,
        position,
        role: parent.role,
        name: parent.name,
        sha256: parent.sha256?.toUpperCase() ?? null,
        autov3: parent.autov3?.toUpperCase() ?? null,
        autov2: parent.autov2?.toUpperCase() ?? null,
        legacy_hash: parent.legacyHash?.toUpperCase() ?? null,
      });
    });
  }

  /**
   * Brings the file's provenance-made version in line with its provenance and its other links
   * (call after the sidecar links are written, inside the same transaction).
   */
  relink(fileId: number): void {
    const provenance = this.statements.provenanceOf.get(fileId);
    const existing = this.statements.originVersion.get(fileId);
    const path = this.statements.pathOf.get(fileId)?.path;
    const wanted =
      provenance !== undefined &&
      path !== undefined &&
      (provenance.recipe !== null || provenance.title !== null) &&
      this.statements.groupedElsewhere.get(fileId)!.n === 0;
    if (!wanted) {
      if (existing) {
        this.statements.deleteVersion.run(existing.id);
        this.statements.deleteModelIfEmpty.run(existing.model_id);
      }
      return;
    }
    const stem = basename(path, extname(path));
    const modelName = provenance.title?.trim() || stem;
    let modelId = this.statements.modelByName.get(modelName)?.id;
    if (modelId === undefined) modelId = Number(this.statements.insertModel.run(modelName).lastInsertRowid);
    const values = { model_id: modelId, name: stem, created_at: provenance.created_at };
    if (existing) {
      this.statements.updateVersion.run({ ...values, id: existing.id });
      if (existing.model_id !== modelId) this.statements.deleteModelIfEmpty.run(existing.model_id);
      this.statements.link.run(existing.id, fileId);
    } else {
      const id = Number(this.statements.insertVersion.run({ ...values, file_id: fileId }).lastInsertRowid);
      this.statements.link.run(id, fileId);
    }
  }
}
