import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";

/**
 * A fresh temp dir per test file (or per test with `each`), removed afterwards, with the hash cache
 * pointed inside it so CLI tests never touch the user's `~/.cache/gyoza`. `onCreate` receives the path.
 */
export function useTempDirWithHashCache(
  prefix: string,
  onCreate: (path: string) => void,
  options: { each?: boolean } = {},
): void {
  let path = "";
  let savedCacheDir: string | undefined;
  const [before, after] = options.each ? [beforeEach, afterEach] : [beforeAll, afterAll];
  before(async () => {
    path = await mkdtemp(join(tmpdir(), prefix));
    savedCacheDir = process.env.GYOZA_CACHE_DIR;
    process.env.GYOZA_CACHE_DIR = join(path, "cache");
    onCreate(path);
  });
  after(async () => {
    if (savedCacheDir === undefined) delete process.env.GYOZA_CACHE_DIR;
    else process.env.GYOZA_CACHE_DIR = savedCacheDir;
    await rm(path, { recursive: true, force: true });
  });
}
