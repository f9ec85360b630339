import { unlinkSync } from "node:fs";
import { access, readdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { removePendingTempFilesSync } from "./atomic-file.js";
import { AtomicFolder } from "./atomic-folder.js";

let dir = "";
useTempDirWithHashCache("gyoza-atomic-folder-", (path) => (dir = path), { each: true });

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe("AtomicFolder", () => {
  it("shows nothing at the target until commit, then the whole folder", async () => {
    const folder = await AtomicFolder.create(join(dir, "out"));
    await writeFile(folder.path("a.txt"), "a");
    expect(await exists(join(dir, "out"))).toBe(false);
    await folder.commit();
    expect(await readdir(join(dir, "out"))).toEqual(["a.txt"]);
    expect(await readdir(dir)).toEqual(["out"]);
  });

  it("leaves nothing when the CLI's exit handler runs before the commit (Ctrl-C)", async () => {
    const folder = await AtomicFolder.create(join(dir, "out"));
    await writeFile(folder.path("half.safetensors"), "half");
    removePendingTempFilesSync(unlinkSync);
    expect(await readdir(dir)).toEqual([]);
    await folder.abort();
  });

  it("refuses a target made by someone else between create and commit, keeping theirs", async () => {
    const folder = await AtomicFolder.create(join(dir, "out"));
    await writeFile(folder.path("ours.txt"), "ours");
    await AtomicFolder.create(join(dir, "out")).then(async (other) => {
      await writeFile(other.path("theirs.txt"), "theirs");
      await other.commit();
    });
    await expect(folder.commit()).rejects.toMatchObject({ code: "usage" });
    await folder.abort();
    expect(await readdir(join(dir, "out"))).toEqual(["theirs.txt"]);
    expect(await readdir(dir)).toEqual(["out"]);
  });

  it("refuses a target that is a file", async () => {
    await writeFile(join(dir, "out"), "a file");
    await expect(AtomicFolder.create(join(dir, "out"))).rejects.toMatchObject({ code: "usage" });
    await unlink(join(dir, "out"));
  });
});
