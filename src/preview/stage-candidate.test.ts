import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRecipe } from "../engine/run-recipe.js";
import { type Recipe, recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { computeRecipeKey, recipeKey } from "./recipe-key.js";
import {
  CANDIDATE_INDEX_FILE,
  cleanupCandidates,
  readCandidateIndex,
  stageCandidate,
} from "./stage-candidate.js";
import { FolderBackend } from "./test-support/folder-backend.js";

let dir: string;
let a: string;
let b: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-stage-"));
  a = join(dir, "a.safetensors");
  b = join(dir, "b.safetensors");
  await writeSyntheticCheckpoint(a, { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: 1 });
  await writeSyntheticCheckpoint(b, { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: 2 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function mixRecipe(alpha: unknown, output = "out.safetensors", inputA = a, inputB = b): Recipe {
  return recipeFromData(
    {
      gyoza: 1,
      inputs: { a: { path: inputA }, b: { path: inputB } },
      steps: { mix: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha } },
      output: { path: output, metadata: "hashes" },
    },
    { sourceName: "test" },
  );
}

async function freshFolder(name: string): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  return folder;
}

const sha256Of = async (path: string) =>
  createHash("sha256")
    .update(await readFile(path))
    .digest("hex");

describe("recipeKey", () => {
  it("is the same for a recipe whose inputs moved and whose output path changed", async () => {
    const moved = await freshFolder("moved-inputs");
    await copyFile(a, join(moved, "renamed-a.safetensors"));
    await copyFile(b, join(moved, "renamed-b.safetensors"));
    const here = await computeRecipeKey(mixRecipe(0.3, "x.safetensors"), { hashCacheDir: false });
    const there = await computeRecipeKey(
      mixRecipe(
        0.3,
        "/elsewhere/y.safetensors",
        join(moved, "renamed-a.safetensors"),
        join(moved, "renamed-b.safetensors"),
      ),
      { hashCacheDir: false },
    );
    expect(there.key).toBe(here.key);
    expect(here.key).toMatch(/^[0-9a-f]{64}$/);
    expect(here.family).toBe("sd1");
    expect(here.inputSha256.a).toBe(await sha256Of(a));
  });

  it("gives a number and the same weight written as text one key, and a different weight another", async () => {
    const facts = { inputSha256: { a: "aa".repeat(32), b: "bb".repeat(32) }, family: "sd1" as const };
    expect(recipeKey(mixRecipe("0.25"), facts)).toBe(recipeKey(mixRecipe(0.25), facts));
    expect(recipeKey(mixRecipe(0.3), facts)).not.toBe(recipeKey(mixRecipe(0.25), facts));
    expect(
      recipeKey(mixRecipe(0.25), { ...facts, inputSha256: { a: "cc".repeat(32), b: "bb".repeat(32) } }),
    ).not.toBe(recipeKey(mixRecipe(0.25), facts));
  });
});

describe("stageCandidate", () => {
  it("merges a recipe into the model folder under its AutoV3 name and reuses it the second time without merging", async () => {
    const folder = await freshFolder("stage-recipe");
    const backend = new FolderBackend(folder);
    const first = await stageCandidate({
      recipe: mixRecipe(0.4),
      backend,
      hashCacheDir: false,
      listDelayMs: 1,
    });
    expect(first.reused).toBe(false);
    expect(first.file).toBe(join(folder, `gyoza-${first.autov3.slice(0, 12)}.safetensors`));
    expect(first.checkpointName).toBe(`gyoza-${first.autov3.slice(0, 12)}.safetensors`);
    expect(first.sha256).toBe(await sha256Of(first.file));
    expect(first.autov2).toBe(first.sha256.slice(0, 10));
    expect(first.recipeKey).toMatch(/^[0-9a-f]{64}$/);
    // nothing else was left in the folder: no temp merge, only the candidate and the index
    expect((await readdir(folder)).sort()).toEqual(
      [CANDIDATE_INDEX_FILE, `gyoza-${first.autov3.slice(0, 12)}.safetensors`].sort(),
    );
    const before = await stat(first.file);

    const second = await stageCandidate({
      recipe: mixRecipe(0.4, "other-name.safetensors"),
      backend,
      hashCacheDir: false,
      listDelayMs: 1,
    });
    const after = await stat(second.file);
    expect(second.reused).toBe(true);
    expect(second.file).toBe(first.file);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(second.autov3).toBe(first.autov3);
  });

  it("merges again when the indexed candidate file was deleted", async () => {
    const folder = await freshFolder("stage-deleted");
    const backend = new FolderBackend(folder);
    const first = await stageCandidate({
      recipe: mixRecipe(0.6),
      backend,
      hashCacheDir: false,
      listDelayMs: 1,
    });
    await unlink(first.file);
    const again = await stageCandidate({
      recipe: mixRecipe(0.6),
      backend,
      hashCacheDir: false,
      listDelayMs: 1,
    });
    expect(again.reused).toBe(false);
    expect(again.autov3).toBe(first.autov3);
    // byte for byte the same file (no time or temp name leaks in): the same AutoV2 in every sample
    expect(again.sha256).toBe(first.sha256);
    expect(again.autov2).toBe(first.autov2);
    expect((await stat(again.file)).isFile()).toBe(true);
  });

  it("with SOURCE_DATE_EPOCH set, a candidate is the very file `gyoza merge` makes of the recipe", async () => {
    const folder = await freshFolder("stage-vs-merge");
    const saved = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = "1700000000";
    try {
      const recipe = mixRecipe(0.35, "mix.safetensors");
      const staged = await stageCandidate({
        recipe,
        recipeBaseDir: dir,
        backend: new FolderBackend(folder),
        hashCacheDir: false,
        listDelayMs: 1,
      });
      await runRecipe(recipe, { baseDir: dir, hashCacheDir: false });
      expect(await sha256Of(join(dir, "mix.safetensors"))).toBe(staged.sha256);
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
  });

  it("hard-links a model file from outside the folder and names it by AutoV3", async () => {
    const folder = await freshFolder("stage-file");
    const backend = new FolderBackend(folder, { prefix: "gyoza" });
    const staged = await stageCandidate({ modelFile: a, backend, hashCacheDir: false, listDelayMs: 1 });
    expect(staged.checkpointName).toBe(`gyoza/gyoza-${staged.autov3.slice(0, 12)}.safetensors`);
    expect((await stat(staged.file)).ino).toBe((await stat(a)).ino);
    expect(staged.sha256).toBe(await sha256Of(a));
    const again = await stageCandidate({ modelFile: a, backend, hashCacheDir: false, listDelayMs: 1 });
    expect(again.reused).toBe(true);
  });

  it.skipIf(!existsSync("/dev/shm") || statSync("/dev/shm").dev === statSync(tmpdir()).dev)(
    "copies a model file from another file system (a RAM disk folder) and leaves no partial file",
    async () => {
      const folder = await mkdtemp(join("/dev/shm", "gyoza-stage-copy-"));
      try {
        const staged = await stageCandidate({
          modelFile: a,
          backend: new FolderBackend(folder),
          hashCacheDir: false,
          listDelayMs: 1,
        });
        expect((await stat(staged.file)).ino).not.toBe((await stat(a)).ino);
        expect(await sha256Of(staged.file)).toBe(await sha256Of(a));
        expect((await readdir(folder)).filter((name) => name.includes("partial"))).toEqual([]);
        expect((await readCandidateIndex(folder)).entries.map((entry) => entry.how)).toEqual(["copy"]);
      } finally {
        await rm(folder, { recursive: true, force: true });
      }
    },
  );

  it("uses a model already in the folder where it is and never records it for cleanup", async () => {
    const folder = await freshFolder("stage-inside");
    const own = join(folder, "my-model.safetensors");
    await copyFile(a, own);
    const backend = new FolderBackend(folder);
    const staged = await stageCandidate({ modelFile: own, backend, hashCacheDir: false, listDelayMs: 1 });
    expect(staged.file).toBe(own);
    expect(staged.checkpointName).toBe("my-model.safetensors");
    expect((await readCandidateIndex(folder)).entries).toEqual([]);
    await cleanupCandidates({ folder });
    expect((await stat(own)).isFile()).toBe(true);
  });

  it("fails before any image when the backend never lists the folder, naming the folder", async () => {
    const folder = await freshFolder("stage-blind");
    const elsewhere = await freshFolder("stage-blind-backend-reads-here");
    const backend = new FolderBackend(folder, { listsFolder: elsewhere });
    await expect(
      stageCandidate({ modelFile: a, backend, hashCacheDir: false, listAttempts: 3, listDelayMs: 1 }),
    ).rejects.toThrow(
      new RegExp(
        `does not list gyoza-[0-9a-f]{12}\\.safetensors after 3 refreshes: it does not read models from ${folder}`,
      ),
    );
    expect(backend.refreshes).toBe(3);
    expect(backend.requests).toEqual([]);
  });

  it("refuses a model folder that does not exist", async () => {
    const backend = new FolderBackend(join(dir, "no-such-folder"));
    await expect(stageCandidate({ modelFile: a, backend, hashCacheDir: false })).rejects.toThrow(
      /does not exist/,
    );
  });
});

describe("stageCandidate from two processes at once", () => {
  it("two gyoza processes staging the same recipe into one folder merge it once and both get that file", async () => {
    const folder = await freshFolder("two-processes");
    const recipeFile = join(dir, "two-processes.json");
    await writeFile(
      recipeFile,
      JSON.stringify({
        gyoza: 1,
        inputs: { a: { path: a }, b: { path: b } },
        steps: { mix: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.42 } },
        output: { path: "out.safetensors", metadata: "hashes" },
      }),
    );
    const child = fileURLToPath(new URL("./test-support/stage-child.ts", import.meta.url));
    const run = () =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
        const process_ = spawn(process.execPath, ["--import", "tsx", child, folder, recipeFile], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        process_.stdout.on("data", (data) => {
          stdout += data;
        });
        process_.stderr.on("data", (data) => {
          stderr += data;
        });
        process_.on("error", fail);
        process_.on("close", (code) => done({ code, stdout, stderr }));
      });
    const results = await Promise.all([run(), run()]);
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    const staged = results.map((result) => JSON.parse(result.stdout));
    expect(staged[0].file).toBe(staged[1].file);
    expect(staged[0].sha256).toBe(staged[1].sha256);
    // exactly one merged it; the other waited on the lock and reused it
    expect(staged.map((one) => one.reused).sort()).toEqual([false, true]);
    expect(results.map((result) => result.stderr).join("")).toContain("waiting for gyoza pid");
    expect((await readdir(folder)).sort()).toEqual([
      CANDIDATE_INDEX_FILE,
      staged[0].file.slice(folder.length + 1),
    ]);
    expect((await readCandidateIndex(folder)).entries).toHaveLength(1);
  }, 60_000);
});

describe("stageCandidate on a full disk", () => {
  it("a merge that runs out of space fails with a clear error, leaves no partial file and keeps finished candidates", async (context) => {
    // a 24 MiB tmpfs: room for one tiny candidate (15 MB), not two; needs root (skipped elsewhere)
    const folder = await freshFolder("full-disk");
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", folder], { stdio: "ignore" });
    } catch {
      context.skip();
    }
    try {
      const backend = new FolderBackend(folder);
      const finished = await stageCandidate({ modelFile: a, backend, hashCacheDir: false, listDelayMs: 1 });
      const failure = await stageCandidate({
        recipe: mixRecipe(0.7),
        backend,
        hashCacheDir: false,
        listDelayMs: 1,
      }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: "io" });
      expect(String((failure as Error).message)).toMatch(/no space left in .*full-disk for this candidate/);
      expect((await readdir(folder)).sort()).toEqual(
        [CANDIDATE_INDEX_FILE, finished.file.slice(folder.length + 1)].sort(),
      );
      expect(await sha256Of(finished.file)).toBe(finished.sha256);
      expect((await readCandidateIndex(folder)).entries.map((entry) => entry.file)).toEqual([
        finished.file.slice(folder.length + 1),
      ]);
    } finally {
      execFileSync("umount", [folder], { stdio: "ignore" });
    }
  });
});

describe("cleanupCandidates", () => {
  it("removes the candidates gyoza placed beyond the cap, most recently used kept, and no other file", async () => {
    const folder = await freshFolder("cleanup");
    const backend = new FolderBackend(folder);
    const user = join(folder, "user-model.safetensors");
    await copyFile(b, user);
    const older = await stageCandidate({ modelFile: a, backend, hashCacheDir: false, listDelayMs: 1 });
    await new Promise((done) => setTimeout(done, 5));
    const newer = await stageCandidate({
      recipe: mixRecipe(0.1),
      backend,
      hashCacheDir: false,
      listDelayMs: 1,
    });
    const capped = await cleanupCandidates({ folder, maxCount: 1 });
    expect(capped.removed).toEqual([older.file.slice(folder.length + 1)]);
    expect(capped.kept).toEqual([newer.file.slice(folder.length + 1)]);
    const all = await cleanupCandidates({ folder });
    expect(all.removed).toEqual([newer.file.slice(folder.length + 1)]);
    expect(await readdir(folder)).toEqual(expect.arrayContaining(["user-model.safetensors"]));
    expect((await readdir(folder)).filter((name) => name.startsWith("gyoza-"))).toEqual([]);
    expect((await stat(a)).isFile()).toBe(true); // the hard link went, the user's file did not
  });

  it("keeps a file that two recipe keys share while either is kept", async () => {
    const folder = await freshFolder("cleanup-shared");
    const backend = new FolderBackend(folder);
    const renamed = (recipe: Recipe): Recipe => ({ ...recipe, steps: { blend: recipe.steps.mix! } });
    const first = await stageCandidate({
      recipe: mixRecipe(0.2),
      backend,
      hashCacheDir: false,
      listDelayMs: 1,
    });
    const second = await stageCandidate({
      recipe: renamed(mixRecipe(0.2)),
      backend,
      hashCacheDir: false,
      listDelayMs: 1,
    });
    expect(second.recipeKey).not.toBe(first.recipeKey);
    expect(second.file).toBe(first.file);
    expect((await readCandidateIndex(folder)).entries).toHaveLength(2);
    const result = await cleanupCandidates({ folder, maxCount: 1 });
    expect(result.removed).toEqual([]);
    const again = await stageCandidate({
      recipe: mixRecipe(0.2),
      backend,
      hashCacheDir: false,
      listDelayMs: 1,
    });
    expect(again.reused).toBe(true);
  });

  it("an index entry that names a file outside the gyoza- pattern is ignored and that file is never deleted", async () => {
    const folder = await freshFolder("cleanup-hostile");
    const victim = join(dir, "victim.safetensors");
    await writeFile(victim, "keep me");
    const inside = join(folder, "user.safetensors");
    await writeFile(inside, "keep me too");
    const entry = (file: string) => ({
      key: "k",
      file,
      size: 7,
      sha256: "a".repeat(64),
      autov3: "b".repeat(64),
      how: "merge",
      created: "2026-01-01T00:00:00Z",
      lastUsed: "2026-01-01T00:00:00Z",
    });
    await writeFile(
      join(folder, CANDIDATE_INDEX_FILE),
      JSON.stringify({
        gyoza_candidates: 1,
        entries: [entry("../victim.safetensors"), entry("user.safetensors"), { file: 5 }],
      }),
    );
    expect((await readCandidateIndex(folder)).entries).toEqual([]);
    await cleanupCandidates({ folder });
    expect(await readFile(victim, "utf8")).toBe("keep me");
    expect(await readFile(inside, "utf8")).toBe("keep me too");
  });

  it("an index that is not JSON reads as empty and staging rewrites it", async () => {
    const folder = await freshFolder("cleanup-garbage");
    await writeFile(join(folder, CANDIDATE_INDEX_FILE), "\u0000{not json");
    const staged = await stageCandidate({
      modelFile: b,
      backend: new FolderBackend(folder),
      hashCacheDir: false,
      listDelayMs: 1,
    });
    expect((await readCandidateIndex(folder)).entries.map((entry) => entry.autov3)).toEqual([staged.autov3]);
  });
});
