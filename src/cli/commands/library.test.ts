import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  MERGE_FAMILY,
  writeInfotextPng,
  writeMergeFamily,
} from "../../library/test-support/write-merge-family.js";
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
    expect(added.stdout).toBe(
      "6 files, 6 added, 0 changed, 0 moved, 0 unchanged, 0 missing, 2 unreadable; " +
        "1 image: 1 added, 0 changed, 0 unchanged, 0 missing, 0 with generation data, 1 unreadable\n",
    );

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

  it("groups merges into models from their provenance: show MODEL@VERSION, find --parent, set, group, list --models/--images", async () => {
    const models = join(dir, "family");
    await writeMergeFamily(models);
    const lib = ["--library", join(dir, "family.db")];
    const run = (...args: string[]) => runCli("library", ...args, ...lib);
    const added = await run("add", models, "--json");
    expect(added.code, added.stderr).toBe(0);
    const shown = await run("show", "Silicon-29");
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^Silicon-29 {2}\(Checkpoint; provenance\)$/m);
    expect(shown.stdout).toMatch(/^version silicon-29 {2}\(SD 1\.5; \d{4}-/m);
    expect(shown.stdout).toMatch(/^ {2}recipe +gyoza: \S+ = weighted_sum\(/m);
    expect(shown.stdout).toMatch(
      new RegExp(`^ {2}parent a +${MERGE_FAMILY.parentA} [0-9A-F]{64} {2}→ `, "m"),
    );

    const file = await run("show", join(models, MERGE_FAMILY.child));
    expect(file.stdout).toMatch(/^ {2}title +Silicon-29$/m);
    expect(file.stdout).toMatch(/^ {2}recipe +gyoza$/m);
    expect(file.stdout).toMatch(new RegExp(`^ {2}parent b +${MERGE_FAMILY.parentB} [0-9A-F]{64}$`, "m"));
    const children = await run("find", "--parent", join(models, MERGE_FAMILY.parentA), "--json");
    expect((JSON.parse(children.stdout) as Entry[]).map((entry) => entry.name).sort()).toEqual([
      MERGE_FAMILY.grandchild,
      MERGE_FAMILY.child,
    ]);
    const fromSilicon = await run("find", "--parent", "Silicon-29", "--json");
    expect((JSON.parse(fromSilicon.stdout) as Entry[]).map((entry) => entry.name)).toEqual([
      MERGE_FAMILY.grandchild,
    ]);

    await writeFile(join(dir, "silicon.md"), "# Silicon-29\n\nSoft light.\n");
    const set = await run(
      "set",
      "Silicon-29",
      "--clip-skip",
      "2",
      "--negative",
      "easynegative",
      "--negative",
      "badhands",
      "--description-file",
      join(dir, "silicon.md"),
      "--tag",
      "anime",
      "--license",
      "CreativeML OpenRAIL-M",
    );
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^ {2}clip skip +2 {2}\[user\]$/m);
    expect((await run("scan")).code).toBe(0);
    const version = JSON.parse((await run("show", "Silicon-29@silicon-29", "--json")).stdout);
    expect(version.versions[0].usage).toMatchObject({
      clipSkip: 2,
      negativeEmbeddings: ["easynegative", "badhands"],
      description: "# Silicon-29\n\nSoft light.\n",
      tags: ["anime"],
      license: "CreativeML OpenRAIL-M",
    });
    expect(
      (JSON.parse((await run("find", "--tag", "anime", "--json")).stdout) as Entry[]).map((e) => e.name),
    ).toEqual([MERGE_FAMILY.child]);

    const grouped = await run(
      "group",
      join(models, MERGE_FAMILY.parentA),
      "--model",
      "Bases",
      "--version-name",
      "anime",
    );
    expect(grouped.code, grouped.stderr).toBe(0);
    const list = JSON.parse((await run("list", "--models", "--json")).stdout) as {
      model: { name: string };
      versions: { name: string }[];
    }[];
    expect(list.map((view) => [view.model.name, view.versions.map((v) => v.name)])).toEqual([
      ["Bases", ["anime"]],
      ["Gyoza Grand", ["gyoza-grand"]],
      ["Silicon-29", ["silicon-29"]],
    ]);

    const images = join(dir, "family-images");
    await mkdir(images, { recursive: true });
    const hashes = JSON.parse((await run("show", join(models, MERGE_FAMILY.child), "--json")).stdout).hashes;
    await writeInfotextPng(
      join(images, "sample.png"),
      `a gyoza\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 42, Size: 512x512, Model hash: ${hashes.AutoV2.toLowerCase()}, Model: silicon-29, Version: v1.10.0`,
    );
    expect((await run("add", images)).code).toBe(0);
    const imageList = await run("list", "--images");
    expect(imageList.stdout).toBe(`${join(images, "sample.png")}  Silicon-29@silicon-29\n`);
    const image = await run("show", join(images, "sample.png"));
    expect(image.stdout).toMatch(/^ {2}seed +42$/m);
    expect(image.stdout).toMatch(
      new RegExp(
        `^ {2}checkpoint +silicon-29 ${hashes.AutoV2} {2}→ .*${MERGE_FAMILY.child} \\(Silicon-29@silicon-29\\) \\[AutoV2\\]$`,
        "m",
      ),
    );
    const withImage = await run("show", "Silicon-29");
    expect(withImage.stdout).toMatch(
      /^ {2}image +\S+sample\.png {2}seed 42, Euler a, 20 steps, CFG 5, clip skip 1$/m,
    );
  });

  it("refuses to set nothing, to clear an unknown field, or to show a model that is not there, with exit code 2", async () => {
    const lib = ["--library", join(dir, "family.db")];
    const nothing = await runCli("library", "set", "Silicon-29", ...lib);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/nothing to set/);
    const unknown = await runCli("library", "set", "Silicon-29", "--clear", "colour", ...lib);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/"colour" is not a version field/);
    const missing = await runCli("library", "show", "No Such Model", ...lib);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no model, version or file in the library is called No Such Model/);
  });
});
