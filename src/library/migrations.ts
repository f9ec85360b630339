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
  {
    version: 2,
    description:
      "version fields set by hand, merge provenance of each file (recipe, parents), sample images and the resources they name",
    sql: `
      -- Models and versions made by gyoza itself: from a file's merge provenance, or grouped by hand.
      -- A provenance-made version belongs to the one file whose metadata made it.
      ALTER TABLE versions ADD COLUMN origin_file_id INTEGER REFERENCES files (id) ON DELETE CASCADE;
      ALTER TABLE versions ADD COLUMN created_at TEXT;
      CREATE UNIQUE INDEX versions_origin_file ON versions (origin_file_id);
      CREATE INDEX models_name ON models (name COLLATE NOCASE);
      CREATE INDEX version_files_file ON version_files (file_id);

      -- Version fields given with \`library set\` (clip_skip, vae, negative_embeddings, trained_words,
      -- description, tags, license, name, base_model), value as JSON. Kept apart from what scans
      -- write, so a re-scan never overwrites them; they win over sidecar and provenance values.
      CREATE TABLE version_fields (
        version_id INTEGER NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT 'user',
        set_at TEXT NOT NULL,
        PRIMARY KEY (version_id, field)
      );

      -- How a file was made, as its own __metadata__ records it (gyoza_recipe, sd_merge_recipe).
      -- recipe: the text as recorded; format: which tool wrote it.
      CREATE TABLE file_provenance (
        file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
        recipe TEXT,
        recipe_format TEXT CHECK (recipe_format IN ('gyoza', 'a1111', 'supermerger', 'sd-mecha', 'unknown')),
        title TEXT,
        description TEXT,
        author TEXT,
        clip_skip INTEGER,
        created_at TEXT,
        -- a few more modelspec fields as a JSON object (architecture, resolution, license, …)
        modelspec TEXT
      );

      -- The models a file was merged from, in recipe order, with the hashes the provenance records.
      -- Linked to local files at query time by any of those hashes.
      CREATE TABLE file_parents (
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT,
        name TEXT,
        sha256 TEXT,
        autov3 TEXT,
        autov2 TEXT,
        legacy_hash TEXT,
        PRIMARY KEY (file_id, position)
      );
      CREATE INDEX file_parents_sha256 ON file_parents (sha256);
      CREATE INDEX file_parents_autov3 ON file_parents (autov3);
      CREATE INDEX hashes_autov2 ON hashes (autov2);
      CREATE INDEX hashes_a1111 ON hashes (a1111_model_hash);

      -- Sample images found among the model folders, with their generation data.
      CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ms REAL NOT NULL,
        inode INTEGER NOT NULL,
        missing INTEGER NOT NULL DEFAULT 0 CHECK (missing IN (0, 1)),
        container TEXT,
        unreadable_reason TEXT,
        -- GenerationInfo as JSON (null when the image carries none), and the fields queries use
        generation TEXT,
        generator TEXT,
        prompt TEXT,
        negative TEXT,
        seed TEXT,
        sampler TEXT,
        steps INTEGER,
        cfg REAL,
        clip_skip INTEGER,
        model_hash TEXT,
        model_name TEXT,
        width INTEGER,
        height INTEGER,
        first_seen_at TEXT NOT NULL,
        scanned_at TEXT NOT NULL
      );

      -- What an image names: its checkpoint, VAE, LoRAs and embeddings, with the hash as recorded
      -- (uppercase, no prefix) and Civitai's version id from an urn:air. Linked to library files and
      -- versions at query time, so an image scanned before its model was added links once it is.
      CREATE TABLE image_resources (
        image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('checkpoint', 'vae', 'lora', 'embedding')),
        name TEXT,
        hash TEXT,
        weight REAL,
        civitai_version_id INTEGER,
        -- for a resource recorded by name only (ComfyUI): its file name without folders or
        -- extension, lowercase, matched against library file names
        name_stem TEXT,
        PRIMARY KEY (image_id, position)
      );
      CREATE INDEX image_resources_hash ON image_resources (hash);
      CREATE INDEX image_resources_civitai ON image_resources (civitai_version_id);
      CREATE INDEX image_resources_name_stem ON image_resources (name_stem);

      -- Files scanned before this version were never read for provenance: forget their mtime so the
      -- next scan identifies them again (their hashes come from the hash cache when it has them).
      UPDATE files SET mtime_ms = -1;
    `,
  },
  {
    version: 3,
    description: "automix studies and their trials",
    sql: `
      -- One row per \`gyoza automix\` study: everything needed to resume it (space, base recipe,
      -- optimizer, seed, settings) as the user wrote it.
      CREATE TABLE automix_studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        space_yaml TEXT NOT NULL,
        base_recipe TEXT NOT NULL,
        optimizer TEXT NOT NULL,
        seed INTEGER NOT NULL,
        settings TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'finished', 'failed')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      -- One row per evaluated candidate, written once: (study, number) is unique so a resumed or
      -- distributed study never records a trial twice. x is the unit-cube point (JSON array).
      CREATE TABLE automix_trials (
        study_id INTEGER NOT NULL REFERENCES automix_studies (id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        x TEXT NOT NULL,
        recipe_key TEXT,
        autov3 TEXT,
        images TEXT,
        scores TEXT,
        score REAL,
        timings TEXT,
        worker TEXT,
        error TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
        created_at TEXT NOT NULL,
        finished_at TEXT,
        PRIMARY KEY (study_id, number)
      );
    `,
  },
  {
    version: 4,
    description: "the automix study a merged file came from (gyoza automix best --merge)",
    sql: `
      -- The file's gyoza_automix metadata as JSON (study, trial, score, optimizer, seed): read from
      -- the file itself on every scan, like the rest of file_provenance, so it survives a rescan.
      -- Files gyoza wrote before this version never carried it, so nothing needs scanning again.
      ALTER TABLE file_provenance ADD COLUMN automix TEXT;
    `,
  },
  {
    version: 5,
    description: "automix trials awaiting a person's rating (type: manual scorers) and the ratings given",
    sql: `
      -- One row per trial a manual scorer asked a person to rate: the trial's images (JSON
      -- [{path, prompt, seed}], in the order the scores follow) and, once given, one score per image
      -- (JSON number array). The study process writes the request and polls for the scores; gyoza
      -- serve (another process, same file) writes them. A rating is given once: scores go from NULL
      -- to a value and never change, so a resumed study uses a rating that arrived while it was stopped.
      CREATE TABLE automix_ratings (
        study_id INTEGER NOT NULL REFERENCES automix_studies (id) ON DELETE CASCADE,
        trial INTEGER NOT NULL,
        images TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        scores TEXT,
        rated_at TEXT,
        PRIMARY KEY (study_id, trial)
      );
    `,
  },
];
