import { randomBytes } from "node:crypto";
import { link, open, readFile, rename, stat, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { sleep } from "../backends/http.js";
import { throwIfAborted } from "../errors.js";
import { ioError } from "../io/byte-source.js";

/**
 * An exclusive lock file, so that two gyoza processes (or two runs in one) staging into one model
 * folder never both merge the same candidate, nor overwrite each other's `.gyoza-candidates.json`.
 * The file is created with O_EXCL (`wx`): whoever creates it holds the lock. It holds the owner's
 * pid, host and start time, and its mtime is refreshed while held, so a lock whose owner died is
 * recognised and taken over: a dead pid on this host at once, any other once it has not been
 * refreshed for `staleMs` (a crashed process on another machine sharing the folder).
 */
export interface LockOwner {
  pid: number;
  host: string;
  /** When it was taken (ISO-8601). */
  since: string;
  /** A random id, so a takeover can tell this lock from a newer one at the same path. */
  nonce: string;
}

export interface FolderLockOptions {
  signal?: AbortSignal;
  /** A lock not refreshed for this long is stale (default 10 minutes; refreshed every quarter of it). */
  staleMs?: number;
  /** First wait between tries (default 50 ms, doubling up to 1 s). */
  retryMs?: number;
  /** Lines for the user: waiting for another owner, taking over a stale lock. */
  onLog?: (line: string) => void;
}

const DEFAULT_STALE_MS = 10 * 60 * 1000;

/** Runs `work` holding the lock file at `path`; the lock is released however `work` ends. */
export async function withFileLock<T>(
  path: string,
  work: () => Promise<T>,
  options: FolderLockOptions = {},
): Promise<T> {
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const owner = await acquire(path, staleMs, options);
  const heartbeat = setInterval(
    () => {
      const now = new Date();
      void utimes(path, now, now).catch(() => {});
    },
    Math.max(10, staleMs / 4),
  );
  heartbeat.unref();
  try {
    return await work();
  } finally {
    clearInterval(heartbeat);
    // remove it only while it is still ours (a takeover by another process after a long stall is possible)
    if ((await readOwner(path))?.nonce === owner.nonce) await unlink(path).catch(() => {});
  }
}

async function acquire(path: string, staleMs: number, options: FolderLockOptions): Promise<LockOwner> {
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    nonce: randomBytes(8).toString("hex"),
  };
  let delay = options.retryMs ?? 50;
  let told = false;
  for (;;) {
    throwIfAborted(options.signal);
    if (await tryCreate(path, owner)) return owner;
    const holder = await readOwner(path);
    const why = await staleReason(path, holder, staleMs);
    if (why) {
      if (await takeOver(path, holder)) {
        options.onLog?.(`took over a stale lock ${path} (${why})`);
        continue;
      }
    } else if (!told) {
      told = true;
      options.onLog?.(
        `waiting for ${holder ? `gyoza pid ${holder.pid} on ${holder.host}` : "another gyoza"}, which is staging into this folder (${path})`,
      );
    }
    await sleep(delay, options.signal).catch(() => throwIfAborted(options.signal));
    delay = Math.min(1000, delay * 2);
  }
}

async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "wx", 0o644);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw ioError(path, cause);
  }
  try {
    await handle.writeFile(`${JSON.stringify(owner)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

/** The lock's owner, or undefined when it is gone or not (yet) readable: its creator may be writing it. */
export async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const data = JSON.parse(await readFile(path, "utf8")) as Partial<LockOwner>;
    if (
      typeof data.pid === "number" &&
      typeof data.host === "string" &&
      typeof data.since === "string" &&
      typeof data.nonce === "string"
    )
      return data as LockOwner;
  } catch {}
  return undefined;
}

async function staleReason(
  path: string,
  holder: LockOwner | undefined,
  staleMs: number,
): Promise<string | undefined> {
  if (holder && holder.host === hostname() && !isAlive(holder.pid))
    return `gyoza pid ${holder.pid} on this host is gone`;
  try {
    const age = Date.now() - (await stat(path)).mtimeMs;
    if (age > staleMs)
      return `not refreshed for ${Math.round(age / 1000)} s${holder ? ` by pid ${holder.pid} on ${holder.host}` : ""}`;
  } catch {}
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, another user's
  }
}

/**
 * Moves the stale lock aside and checks that what moved is the lock judged stale; if another
 * process took over first and made a fresh lock, that one is put back (never lost).
 */
async function takeOver(path: string, judged: LockOwner | undefined): Promise<boolean> {
  const aside = `${path}.stale-${randomBytes(6).toString("hex")}`;
  try {
    await rename(path, aside);
  } catch {
    return false; // gone already: the next try creates it
  }
  const moved = await readOwner(aside);
  if (moved?.nonce !== judged?.nonce) {
    await link(aside, path).catch(() => {}); // a fresh lock: back where it was (unless a newer one exists)
    await unlink(aside).catch(() => {});
    return false;
  }
  await unlink(aside).catch(() => {});
  return true;
}
