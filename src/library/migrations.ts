/**
 * The library's schema, one migration per step, applied in order and counted in SQLite's
 * `PRAGMA user_version`. Kept as TypeScript strings rather than `.sql` files so they travel inside
 * `dist/` and the bundled bin with no copy step. A migration is never edited once released: a
 * change is a new entry at the end.
 */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description:
      "folders, files with their identity and Civitai facts, hashes, models, versions, sidecar facts",
    sql: `
      -- Folders given to \`library add\`; \`library scan\` walks them again.
      CREATE TABLE roots (
        path TEXT PRIMARY KEY,
        added_at TEXT NOT NULL
      );

      -- One row per model file ever seen. A vanished file keeps its row (missing = 1); a file found
      -- at a new path with the same sha256 is the same row with its path updated.
      CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ms REAL NOT NULL,
        inode INTEGER NOT NULL,
        missing INTEGER NOT NULL DEFAULT 0 CHECK (missing IN (0, 1)),
        kind TEXT NOT NULL
          CHECK (kind IN ('checkpoint', 'vae', 'lora', 'embedding', 'unknown', 'unreadable')),
        unreadable_reason TEXT,
        -- architecture id as inspect reports it (sd1-ldm, sdxl-sgm, …) and its family
        architecture TEXT,
        family TEXT,
        -- JSON array of component names (unet, text_encoder, vae, ema, …)
        components TEXT,
        -- Civitai's names: files[].type and files[].metadata {fp, size, format}
        civitai_type TEXT,
        fp TEXT,
        size_kind TEXT CHECK (size_kind IN ('full', 'pruned')),
        format TEXT CHECK (format IN ('SafeTensor', 'PickleTensor')),
        -- checkpoints only: whether VAE weights are inside the file
        baked_vae INTEGER CHECK (baked_vae IN (0, 1)),
        first_seen_at TEXT NOT NULL,
        scanned_at TEXT NOT NULL,
        hashed_at TEXT
      );

      -- The six hashes of DOMAIN.md §5 in Civitai's uppercase forms, plus the A1111 / kohya variants.
      CREATE TABLE hashes (
        file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
        sha256 TEXT NOT NULL,
        autov1 TEXT,
        autov2 TEXT NOT NULL,
        autov3 TEXT NOT NULL,
        autov3_full TEXT NOT NULL,
        blake3 TEXT NOT NULL,
        crc32 TEXT NOT NULL,
        crc32_civitai TEXT NOT NULL,
        a1111_model_hash TEXT
      );
      CREATE INDEX hashes_sha256 ON hashes (sha256);
      CREATE INDEX hashes_autov3 ON hashes (autov3);
      CREATE INDEX hashes_blake3 ON hashes (blake3);

      -- Civitai's model → modelVersions → files, filled from sidecars for now.
      CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT,
        civitai_model_id INTEGER UNIQUE,
        source TEXT NOT NULL
      );
      CREATE TABLE versions (
        id INTEGER PRIMARY KEY,
        model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
        name TEXT,
        base_model TEXT,
        civitai_version_id INTEGER UNIQUE,
        source TEXT NOT NULL
      );
      CREATE TABLE version_files (
        version_id INTEGER NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        PRIMARY KEY (version_id, file_id)
      );

      -- What other tools wrote beside a file, one fact a row, value as JSON, with where it came from.
      CREATE TABLE sidecar_facts (
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        sidecar_path TEXT NOT NULL,
        fact TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (file_id, source, fact)
      );
      CREATE INDEX sidecar_facts_fact ON sidecar_facts (fact);
    `,
  },
];
