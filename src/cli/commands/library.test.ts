import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  MODEL_FOLDER_FILES as FILES,
  writeModelFolder,
} from "../../library/test-support/write-model-folder.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir = "";
useTempDirWithHashCache("gyoza-library-cli-", (path) => (dir = path));

async function gyoza(...args: string[]) {
  return runCli(...args, "--library", join(dir, "library.db"));
}

async function json<T>(...args: string[]): Promise<T> {
  const run = await gyoza(...args, "--json");
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}

interface Entry {
  name: string;
  kind: string;
  missing: boolean;
  hashes: Record<string, string | null> | null;
  sidecars: { source: string; fact: string; value: unknown }[];
}

describe("gyoza library", () => {
  it("adds a folder, then lists, shows and finds its files", async () => {
    const models = join(dir, "models");
    await writeModelFolder(models);
    const added = await gyoza("library", "add", models);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toBe("6 files, 6 added, 0 changed, 0 moved, 0 unchanged, 0 missing, 2 unreadable\n");

    const rescan = await json<{ unchanged: number; hashed: number }>("library", "scan");
    expect(rescan).toMatchObject({ unchanged: 6, hashed: 0 });

    const list = await json<Entry[]>("library", "list");
    expect(list.map((entry) => entry.name).sort()).toEqual(Object.values(FILES).sort());
    const human = await gyoza("library", "list");
    expect(human.stdout).toMatch(/^checkpoint\s+fp16\s+[0-9A-F]{10}\s+.*gyozamix-v1\.safetensors$/m);

    const checkpoint = list.find((entry) => entry.name === FILES.checkpoint)!;
    const sha256 = checkpoint.hashes!.SHA256!;
    const shown = await json<Entry>("library", "show", sha256.slice(0, 12).toLowerCase());
    expect(shown.name).toBe(FILES.checkpoint);
    const byPath = await gyoza("library", "show", join(models, FILES.checkpoint));
    expect(byPath.stdout).toMatch(/^ {2}SHA256 +[0-9A-F]{64}$/m);
    expect(byPath.stdout).toMatch(/^ {2}baseModel +SD 1\.5 {2}\[civitai-helper\]$/m);
    expect(byPath.stdout).toMatch(
      /^ {2}version +GyozaMix v1\.0 \(SD 1\.5; civitai 56@1234\) {2}\[civitai-helper\]$/m,
    );

    const byBlake3 = await json<Entry[]>("library", "find", "--hash", checkpoint.hashes!.BLAKE3!.slice(0, 8));
    expect(byBlake3.map((entry) => entry.name)).toEqual([FILES.checkpoint]);
    expect((await json<Entry[]>("library", "find", "--tag", "ANIME")).map((entry) => entry.name)).toEqual([
      FILES.checkpoint,
    ]);
    expect((await json<Entry[]>("library", "find", "--base", "SDXL 1.0")).map((entry) => entry.name)).toEqual(
      [FILES.sdxlCkpt],
    );
    expect((await json<Entry[]>("library", "find", "--name", "gyozamix")).map((entry) => entry.name)).toEqual(
      [FILES.checkpoint],
    );
    expect(await json<Entry[]>("library", "find", "--name", "gyoza", "--base", "sdxl")).toEqual([]);
  });

  it("refuses a hash prefix that is too short or names no file, with exit code 2", async () => {
    const short = await gyoza("library", "find", "--hash", "ab");
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/not a hash prefix of 4\+ hex digits/);
    const unknown = await gyoza("library", "show", "0000000000");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no file in the library has a hash starting 0000000000/);
  });
});
