import type { LibraryDatabase } from "./open-library.js";
import type { SidecarFact, SidecarSource } from "./read-sidecars.js";

/**
 * When two sources name a Civitai version, the freshest API answer wins (`gyoza library fetch`),
 * then the API JSON Civitai Helper saved, then the tools that copy from it.
 */
const SOURCE_PREFERENCE: readonly SidecarSource[] = [
  "civitai-api",
  "civitai-helper",
  "stability-matrix",
  "lora-manager",
];

/** The Civitai model and version a file belongs to, from one sidecar's facts. */
export interface CivitaiVersionFacts {
  source: SidecarSource;
  modelId: number;
  versionId: number;
  modelName: string | null;
  modelType: string | null;
  versionName: string | null;
  baseModel: string | null;
}

/** The model/version a file's sidecars name (both ids needed), from the preferred source. */
export function civitaiVersionOf(facts: readonly SidecarFact[]): CivitaiVersionFacts | undefined {
  for (const source of SOURCE_PREFERENCE) {
    const bySource = new Map(
      facts.filter((fact) => fact.source === source).map((fact) => [fact.fact, fact.value]),
    );
    const modelId = bySource.get("civitaiModelId");
    const versionId = bySource.get("civitaiVersionId");
    if (typeof modelId !== "number" || typeof versionId !== "number") continue;
    const text = (name: string): string | null => {
      const value = bySource.get(name);
      return typeof value === "string" ? value : null;
    };
    return {
      source,
      modelId,
      versionId,
      modelName: text("modelName"),
      modelType: text("modelType"),
      versionName: text("versionName"),
      baseModel: text("baseModel"),
    };
  }
  return undefined;
}

/**
 * Groups files into Civitai's model → versions → files as their sidecars say. Rows made from
 * sidecars carry the sidecar's source; a file's sidecar-made links are replaced on every write, so
 * a sidecar that changes or goes away moves or drops the link (models and versions stay).
 */
export class CivitaiVersionLinker {
  private readonly statements;

  constructor(db: LibraryDatabase) {
    this.statements = {
      unlinkFromSidecars: db.prepare<[number]>(
        `DELETE FROM version_files WHERE file_id = ?
           AND version_id IN (SELECT id FROM versions
             WHERE source IN ('civitai-api', 'civitai-helper', 'stability-matrix', 'lora-manager'))`,
      ),
      upsertModel: db.prepare<{
        civitai_model_id: number;
        name: string;
        type: string | null;
        source: string;
      }>(
        `INSERT INTO models (civitai_model_id, name, type, source) VALUES (@civitai_model_id, @name, @type, @source)
         ON CONFLICT (civitai_model_id) DO UPDATE SET name = excluded.name, type = coalesce(excluded.type, type)`,
      ),
      modelId: db.prepare<[number], { id: number }>("SELECT id FROM models WHERE civitai_model_id = ?"),
      upsertVersion: db.prepare<{
        model_id: number;
        civitai_version_id: number;
        name: string | null;
        base_model: string | null;
        source: string;
      }>(
        `INSERT INTO versions (model_id, civitai_version_id, name, base_model, source)
         VALUES (@model_id, @civitai_version_id, @name, @base_model, @source)
         ON CONFLICT (civitai_version_id) DO UPDATE SET model_id = excluded.model_id,
           name = coalesce(excluded.name, name), base_model = coalesce(excluded.base_model, base_model)`,
      ),
      versionId: db.prepare<[number], { id: number }>("SELECT id FROM versions WHERE civitai_version_id = ?"),
      link: db.prepare<[number, number]>(
        "INSERT OR IGNORE INTO version_files (version_id, file_id) VALUES (?, ?)",
      ),
    };
  }

  /** Call inside the transaction that writes the file's sidecar facts. */
  link(fileId: number, facts: readonly SidecarFact[]): void {
    this.statements.unlinkFromSidecars.run(fileId);
    const version = civitaiVersionOf(facts);
    if (!version) return;
    this.statements.upsertModel.run({
      civitai_model_id: version.modelId,
      name: version.modelName ?? `Civitai model ${version.modelId}`,
      type: version.modelType,
      source: version.source,
    });
    const modelId = this.statements.modelId.get(version.modelId)!.id;
    this.statements.upsertVersion.run({
      model_id: modelId,
      civitai_version_id: version.versionId,
      name: version.versionName,
      base_model: version.baseModel,
      source: version.source,
    });
    this.statements.link.run(this.statements.versionId.get(version.versionId)!.id, fileId);
  }
}
