import { spawnSync } from "node:child_process";
import { readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { readOwner, withFileLock } from "./folder-lock.js";

let dir = "";
useTempDirWithHashCache("gyoza-lock-", (path) => {
  dir = path;
});

/** A pid that was just used and is gone (a finished child). */
function deadPid(): number {
  return spawnSync(process.execPath, ["-e", ""]).pid!;
}

describe("withFileLock", () => {
  it("holds the lock with pid, host and time while working, and removes it afterwards", async () => {
    const path = join(dir, "held.lock");
    const seen = await withFileLock(path, async () => readOwner(path));
    expect(seen).toMatchObject({ pid: process.pid, host: hostname() });
    expect(Number.isNaN(Date.parse(seen!.since))).toBe(false);
    expect(await readdir(dir)).not.toContain("held.lock");
  });

  it("a second holder waits until the first is done, and says whom it waits for", async () => {
    const path = join(dir, "wait.lock");
    const order: string[] = [];
    const logs: string[] = [];
    let release!: () => void;
    const first = withFileLock(path, async () => {
      order.push("first in");
      await new Promise<void>((done) => {
        release = done;
      });
      order.push("first out");
    });
    await new Promise((done) => setTimeout(done, 20));
    const second = withFileLock(path, async () => order.push("second in"), {
      retryMs: 5,
      onLog: (line) => logs.push(line),
    });
    await new Promise((done) => setTimeout(done, 60));
    expect(order).toEqual(["first in"]);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(["first in", "first out", "second in"]);
    expect(logs).toEqual([expect.stringContaining(`waiting for gyoza pid ${process.pid} on ${hostname()}`)]);
  });

  it("takes over a lock whose owner on this host is gone, with a log line naming it", async () => {
    const path = join(dir, "dead.lock");
    const pid = deadPid();
    await writeFile(
      path,
      JSON.stringify({ pid, host: hostname(), since: new Date().toISOString(), nonce: "x" }),
    );
    const logs: string[] = [];
    const result = await withFileLock(path, async () => "ran", { onLog: (line) => logs.push(line) });
    expect(result).toBe("ran");
    expect(logs).toEqual([`took over a stale lock ${path} (gyoza pid ${pid} on this host is gone)`]);
    expect((await readdir(dir)).filter((name) => name.startsWith("dead.lock"))).toEqual([]);
  });

  it("takes over a lock from another host only once it has not been refreshed for the stale time", async () => {
    const path = join(dir, "remote.lock");
    const remote = { pid: 1, host: "another-machine", since: new Date().toISOString(), nonce: "r" };
    await writeFile(path, JSON.stringify(remote));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    // fresh: waited on (and the wait stops as interrupted when asked)
    await expect(
      withFileLock(path, async () => "ran", { staleMs: 60_000, retryMs: 5, signal: controller.signal }),
    ).rejects.toMatchObject({ code: "interrupted" });
    expect(JSON.parse(await readFile(path, "utf8"))).toEqual(remote);
    const old = new Date(Date.now() - 120_000);
    await utimes(path, old, old);
    const logs: string[] = [];
    expect(await withFileLock(path, async () => "ran", { staleMs: 60_000, onLog: (l) => logs.push(l) })).toBe(
      "ran",
    );
    expect(logs[0]).toMatch(
      /took over a stale lock .*not refreshed for 1[12]\d s by pid 1 on another-machine/,
    );
  });

  it("refreshes the lock while held, so a long merge is never judged stale", async () => {
    const path = join(dir, "long.lock");
    const mtimes = await withFileLock(
      path,
      async () => {
        const old = new Date(Date.now() - 60_000);
        await utimes(path, old, old);
        await new Promise((done) => setTimeout(done, 120));
        return Date.now() - (await stat(path)).mtimeMs;
      },
      { staleMs: 200 },
    );
    expect(mtimes).toBeLessThan(1000);
  });

  it("releases the lock when the work fails", async () => {
    const path = join(dir, "fail.lock");
    await expect(withFileLock(path, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await readdir(dir)).not.toContain("fail.lock");
  });
});
