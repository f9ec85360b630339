import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isGyozaError } from "../errors.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { findGridFolders, readGridFolder } from "./read-grid-folder.js";

let dir = "";
useTempDirWithHashCache("gyoza-grid-folders-", (path) => (dir = path), { each: true });

const KEY = "a".repeat(64);
function grid(cells: unknown[] = []) {
  return {
    gyoza_grid: 1,
    fingerprint: "f",
    axes: [{ axis: "x", parameter: "OUT03", labels: ["OUT03 = 0", "OUT03 = 1"], values: [0, 1] }],
    cells,
    created: "2026-01-01T00:00:00.000Z",
  };
}
function writeGrid(folder: string, value: unknown = grid()) {
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "grid.json"), JSON.stringify(value));
}
const cell = (extra: Record<string, unknown>) => ({
  x: 0,
  y: 0,
  z: 0,
  labels: ["OUT03 = 0"],
  status: "done",
  params: {},
  image: "cells/0_0_0.png",
  recipeFile: `recipes/${KEY}.yaml`,
  ...extra,
});

describe("findGridFolders", () => {
  it("finds grids at any depth up to the limit, not inside hidden folders, a grid, or a symlinked folder", async () => {
    writeGrid(join(dir, "a"));
    writeGrid(join(dir, "a", "inner")); // inside a grid: not looked for
    writeGrid(join(dir, "x", "y", "deep"));
    writeGrid(join(dir, "1", "2", "3", "too-deep"));
    writeGrid(join(dir, ".hidden", "g"));
    mkdirSync(join(dir, "links"));
    symlinkSync(join(dir, "a"), join(dir, "links", "to-a"));
    const found = await findGridFolders([dir], { maxDepth: 3 });
    expect(found.map((f) => f.folder).sort()).toEqual([join(dir, "a"), join(dir, "x", "y", "deep")]);
  });

  it("stops after the entry budget instead of walking a huge folder", async () => {
    mkdirSync(join(dir, "big"));
    for (let i = 0; i < 50; i++) mkdirSync(join(dir, "big", `d${i}`));
    writeGrid(join(dir, "big", "d49", "g"));
    expect(await findGridFolders([dir], { maxEntries: 20 })).toEqual([]);
    expect(await findGridFolders([dir])).toHaveLength(1);
  });

  it("lists a grid folder whose grid.json is hostile with the reason, not its contents", async () => {
    writeGrid(join(dir, "evil"), grid([cell({ image: "/etc/passwd" })]));
    const [found] = await findGridFolders([dir]);
    expect(found?.grid).toBeUndefined();
    expect(found?.problem).toMatch(/cells\.0\.image: must be cells\/<x>_<y>_<z>\.png/);
  });
});

describe("readGridFolder refuses what gyoza grid never writes", () => {
  const refused = async (value: unknown) => {
    writeGrid(join(dir, "g"), value);
    try {
      await readGridFolder(join(dir, "g"));
    } catch (error) {
      expect(isGyozaError(error, "format")).toBe(true);
      return (error as Error).message;
    }
    throw new Error("not refused");
  };

  it("accepts a grid gyoza grid could have written", async () => {
    writeGrid(join(dir, "g"), grid([cell({})]));
    expect((await readGridFolder(join(dir, "g"))).cells).toHaveLength(1);
  });
  it("refuses a recipe file outside recipes/", async () => {
    expect(await refused(grid([cell({ recipeFile: "../../mix.yaml" })]))).toMatch(/cells\.0\.recipeFile/);
  });
  it("refuses a cell outside the axes", async () => {
    expect(await refused(grid([cell({ x: 5, image: "cells/5_0_0.png" })]))).toMatch(/cells\.0 lies outside/);
  });
  it("refuses a file that is not a gyoza grid", async () => {
    expect(await refused({ gyoza_grid: 2, cells: [] })).toMatch(/gyoza_grid/);
  });
});
