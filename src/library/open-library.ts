import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { GyozaError } from "../errors.js";
import { MIGRATIONS, type Migration } from "./migrations.js";

/** How long a connection waits for another process's write to finish before failing (a scan writes one file at a time). */
export const BUSY_TIMEOUT_MS = 10_000;

export type LibraryDatabase = Database.Database;

/** `$GYOZA_LIBRARY`, else `~/.local/share/gyoza/library.db`. */
export function defaultLibraryPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.GYOZA_LIBRARY || join(homedir(), ".local", "share", "gyoza", "library.db");
}

/**
 * Opens (creating when needed) a library database: WAL, so readers never block the one writer and
 * a second process can scan at the same time; foreign keys enforced; a busy timeout instead of
 * immediate SQLITE_BUSY; and every pending migration applied.
 */
export function openLibrary(path: string, migrations: readonly Migration[] = MIGRATIONS): LibraryDatabase {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  let db: LibraryDatabase;
  try {
    db = new Database(path);
  } catch (cause) {
    throw new GyozaError("io", `cannot open the library database: ${(cause as Error).message}`, {
      file: path,
      cause,
    });
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma("journal_mode = WAL");
    // In WAL mode NORMAL never corrupts the database; a power cut may only lose the last commits.
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    migrate(db, migrations, path);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** The schema version a database is at (0 for an empty one). */
export function schemaVersion(db: LibraryDatabase): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/**
 * Applies the migrations past the database's version, each in its own IMMEDIATE transaction (so two
 * processes opening a fresh library never both apply one), re-reading the version inside it.
 */
function migrate(db: LibraryDatabase, migrations: readonly Migration[], path: string): void {
  const latest = migrations.at(-1)?.version ?? 0;
  if (schemaVersion(db) > latest) {
    throw new GyozaError(
      "usage",
      `library schema ${schemaVersion(db)} is newer than this gyoza knows (${latest})`,
      {
        file: path,
        fix: "upgrade gyoza, or point --library at another database",
      },
    );
  }
  for (const migration of migrations) {
    const apply = db.transaction(() => {
      if (schemaVersion(db) >= migration.version) return;
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    });
    apply.immediate();
  }
}
