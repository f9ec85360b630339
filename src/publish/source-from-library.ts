import { GyozaError } from "../errors.js";
import type { LibraryStore } from "../library/index.js";
import type { PublishSource } from "./publish-source.js";

interface VersionMatch {
  version_id: number;
  version_name: string | null;
  base_model: string | null;
  model_name: string;
  model_type: string | null;
}

/**
 * The PublishSource of `MODEL@VERSION` from the library: the model and version by name (or Civitai
 * id, case-insensitive), the version's files that are still on disk, and what their sidecars say
 * (trained words, tags, description, preview images). `@VERSION` may be left out when the model
 * has one version.
 */
export function publishSourceFromLibrary(store: LibraryStore, ref: string): PublishSource {
  const at = ref.lastIndexOf("@");
  const modelName = (at >= 0 ? ref.slice(0, at) : ref).trim();
  const versionName = at >= 0 ? ref.slice(at + 1).trim() : undefined;
  if (modelName === "")
    throw new GyozaError("usage", `"${ref}" names no model`, { fix: "write MODEL@VERSION" });
  const candidates = store.db
    .prepare<{ model: string }, VersionMatch>(
      `SELECT versions.id AS version_id, versions.name AS version_name, versions.base_model,
              models.name AS model_name, models.type AS model_type
         FROM versions JOIN models ON models.id = versions.model_id
        WHERE lower(models.name) = lower(@model) OR CAST(models.civitai_model_id AS TEXT) = @model
        ORDER BY versions.id`,
    )
    .all({ model: modelName });
  if (candidates.length === 0) {
    throw new GyozaError("usage", `no model named ${modelName} in the library`, {
      fix: "see `gyoza library list`; versions come from the files' Civitai sidecars",
    });
  }
  const matching =
    versionName === undefined
      ? candidates
      : candidates.filter(
          (row) =>
            row.version_name?.toLowerCase() === versionName.toLowerCase() ||
            String(civitaiVersionId(store, row.version_id)) === versionName,
        );
  if (matching.length !== 1) {
    const names = candidates.map((row) => row.version_name ?? `#${row.version_id}`).join(", ");
    throw new GyozaError(
      "usage",
      matching.length === 0
        ? `${modelName} has no version ${versionName}`
        : `${modelName} has ${matching.length} versions`,
      { fix: `name one: ${names}` },
    );
  }
  const version = matching[0]!;
  const files = store.db
    .prepare<[number], { id: number; path: string; civitai_type: string | null }>(
      `SELECT files.id, files.path, files.civitai_type FROM version_files JOIN files ON files.id = version_files.file_id
        WHERE version_files.version_id = ? AND files.missing = 0 ORDER BY files.kind = 'checkpoint' DESC, files.path`,
    )
    .all(version.version_id);
  const facts = new Map<string, unknown>();
  const previews: string[] = [];
  for (const file of files) {
    for (const fact of store.sidecarFactsOf(file.id)) {
      const value = JSON.parse(fact.value) as unknown;
      if (fact.fact === "preview" && typeof value === "string") previews.push(value);
      else if (!facts.has(fact.fact)) facts.set(fact.fact, value);
    }
  }
  const text = (name: string): string | null => {
    const value = facts.get(name);
    return typeof value === "string" && value !== "" ? value : null;
  };
  const texts = (name: string): string[] => {
    const value = facts.get(name);
    return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
  };
  return {
    model: { name: version.model_name, type: version.model_type, tags: texts("tags") },
    version: {
      name: version.version_name ?? `version ${version.version_id}`,
      baseModel: version.base_model ?? text("baseModel"),
      description: text("description"),
      trainedWords: texts("trainedWords"),
      usage: text("notes"),
    },
    files: files.map((file) => ({ path: file.path, type: file.civitai_type })),
    images: previews.map((path) => ({ path })),
  };
}

function civitaiVersionId(store: LibraryStore, versionId: number): number | null {
  return (
    store.db
      .prepare<[number], { id: number | null }>("SELECT civitai_version_id AS id FROM versions WHERE id = ?")
      .get(versionId)?.id ?? null
  );
}
