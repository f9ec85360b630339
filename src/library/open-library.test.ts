import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { MIGRATIONS } from "./migrations.js";
import { defaultLibraryPath, openLibrary, schemaVersion } from "./open-library.js";

let dir = "";
useTempDirWithHashCache("gyoza-library-open-", (path) => (dir = path), { each: true });

describe("openLibrary", () => {
  it("migrates an empty database to the latest schema with WAL and foreign keys on", () => {
    const db = openLibrary(join(dir, "nested", "library.db"));
    expect(schemaVersion(db)).toBe(MIGRATIONS.at(-1)!.version);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
    const tables = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all()
      .map((row) => row.name);
    expect(tables).toEqual([
      "automix_ratings",
      "automix_studies",
      "automix_trials",
      "file_parents",
      "file_provenance",
      "files",
      "hashes",
      "image_resources",
      "images",
      "models",
      "roots",
      "sidecar_facts",
      "version_fields",
      "version_files",
      "versions",
    ]);
    db.close();
  });

  it("applies each migration once, however often the library is opened", () => {
    const path = join(dir, "library.db");
    openLibrary(path).close();
    const db = openLibrary(path);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    db.close();
  });

  it("applies only the migrations past the database's version", () => {
    const path = join(dir, "library.db");
    openLibrary(path, MIGRATIONS.slice(0, 1)).close();
    const extra = { version: 2, description: "test", sql: "CREATE TABLE extra (id INTEGER PRIMARY KEY);" };
    const db = openLibrary(path, [...MIGRATIONS.slice(0, 1), extra]);
    expect(schemaVersion(db)).toBe(2);
    db.close();
  });

  it("upgrades a version-1 library to version 2, keeping every row and marking its files for one more identification", () => {
    const path = join(dir, "library.db");
    const old = openLibrary(path, MIGRATIONS.slice(0, 1));
    old.prepare("INSERT INTO models (name, source) VALUES ('GyozaMix', 'civitai-helper')").run();
    old.prepare("INSERT INTO versions (model_id, name, source) VALUES (1, 'v1', 'civitai-helper')").run();
    old
      .prepare(
        `INSERT INTO files (path, size, mtime_ms, inode, kind, first_seen_at, scanned_at)
         VALUES ('/m/a.safetensors', 10, 1700000000000, 7, 'checkpoint', 'then', 'then')`,
      )
      .run();
    old.close();
    const db = openLibrary(path);
    expect(schemaVersion(db)).toBe(MIGRATIONS.at(-1)!.version);
    expect(db.prepare("SELECT name, origin_file_id, created_at FROM versions").all()).toEqual([
      { name: "v1", origin_file_id: null, created_at: null },
    ]);
    // scanned before provenance was read: the next scan identifies it again
    expect(db.prepare("SELECT path, mtime_ms FROM files").all()).toEqual([
      { path: "/m/a.safetensors", mtime_ms: -1 },
    ]);
    db.close();
  });

  it("refuses a database written by a newer gyoza", () => {
    const path = join(dir, "library.db");
    const raw = new Database(path);
    raw.pragma("user_version = 999");
    raw.close();
    let error: unknown;
    try {
      openLibrary(path);
    } catch (caught) {
      error = caught;
    }
    expect(isGyozaError(error, "usage")).toBe(true);
    expect((error as Error).message).toMatch(/schema 999 is newer/);
  });

  it("enforces foreign keys: hashes of a file that does not exist are refused", () => {
    const db = openLibrary(join(dir, "library.db"));
    expect(() =>
      db
        .prepare(
          "INSERT INTO hashes (file_id, sha256, autov2, autov3, autov3_full, blake3, crc32, crc32_civitai) VALUES (42, 'a', 'a', 'a', 'a', 'a', 'a', 'a')",
        )
        .run(),
    ).toThrow(/FOREIGN KEY/);
    db.close();
  });

  it("takes its default path from GYOZA_LIBRARY, else ~/.local/share/gyoza", () => {
    expect(defaultLibraryPath({ GYOZA_LIBRARY: "/x/lib.db" })).toBe("/x/lib.db");
    expect(defaultLibraryPath({})).toMatch(/\.local\/share\/gyoza\/library\.db$/);
  });
});
