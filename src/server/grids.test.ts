import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRecipe } from "../recipe/index.js";
import { makeStandinGrid } from "../test-support/standin-grid.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import type { ApiError, GridCellRecipe, GridSummary, GridView } from "./api-schemas.js";
import { createServer, type GyozaServer } from "./create-server.js";

/**
 * The grid routes of gyoza serve on a real grid made by `gyoza grid` through the ComfyUI stand-in
 * (one cell failed on purpose), and on hostile grid folders: grid.json is untrusted input.
 */
let dir = "";
useTempDirWithHashCache("gyoza-serve-grids-", (path) => (dir = path));
let server: GyozaServer;
let origin: string;
let outside: string;
let gridFolder: string;
const id = (folder: string) => Buffer.from(folder, "utf8").toString("base64url");

beforeAll(async () => {
  const grid = await makeStandinGrid(dir, { failFirst: "CUDA out of memory" });
  gridFolder = grid.out;
  expect(grid.result).toMatchObject({ generated: 3, failed: 1 });
  // a grid.json that is not JSON, and one whose cell image leaves the folder
  mkdirSync(join(dir, "grids", "broken"));
  writeFileSync(join(dir, "grids", "broken", "grid.json"), "{ not json");
  const index = JSON.parse(readFileSync(join(gridFolder, "grid.json"), "utf8"));
  mkdirSync(join(dir, "grids", "hostile"));
  index.cells[1].image = "../../../../../../etc/passwd";
  writeFileSync(join(dir, "grids", "hostile", "grid.json"), JSON.stringify(index));
  // a valid grid whose cell image is a symlink to a file outside it
  outside = mkdtempSync(join(tmpdir(), "gyoza-grids-outside-"));
  writeFileSync(join(outside, "secret.png"), "not for you");
  cpSync(gridFolder, join(dir, "grids", "linked"), { recursive: true });
  rmSync(join(dir, "grids", "linked", "cells", "1_0_0.png"));
  symlinkSync(join(outside, "secret.png"), join(dir, "grids", "linked", "cells", "1_0_0.png"));
  // a real grid outside the allowed folders
  cpSync(gridFolder, join(outside, "grid"), { recursive: true });
  server = await createServer({ library: join(dir, "library.db"), roots: [dir] });
  origin = new URL(await server.listen()).origin;
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (outside) rmSync(outside, { recursive: true, force: true });
});

function get(path: string, token: string | null = server.token): Promise<Response> {
  return fetch(`${origin}${path}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
}
async function json<T>(path: string): Promise<T> {
  const response = await get(path);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as T;
}

describe("GET /api/grids", () => {
  it("lists the grid gyoza grid made, with its axes in the user's terms, counts and creation time", async () => {
    const list = await json<GridSummary[]>("/api/grids");
    const grid = list.find((g) => g.folder === gridFolder);
    expect(grid).toMatchObject({ name: "TinyMix", cells: 4, done: 3, failed: 1 });
    expect(grid!.axes).toEqual([
      { axis: "x", parameter: "OUT03", labels: ["OUT03 = 0", "OUT03 = 0.5"] },
      { axis: "y", parameter: "clip_skip", labels: ["clip_skip = 1", "clip_skip = 2"] },
    ]);
    expect(Date.parse(grid!.created ?? "")).toBeGreaterThan(0);
  });

  it("lists a folder whose grid.json is broken with its problem instead of hiding it", async () => {
    const list = await json<GridSummary[]>("/api/grids");
    expect(list.find((g) => g.name === "broken")?.problem).toMatch(/is not JSON/);
    expect(list.find((g) => g.name === "hostile")?.problem).toMatch(
      /cells\.1\.image: must be cells\/<x>_<y>_<z>\.png/,
    );
  });
});

describe("GET /api/grids/:id and its cells", () => {
  it("answers the index: each cell's place, status, the failed cell's reason and image paths", async () => {
    const view = await json<GridView>(`/api/grids/${id(gridFolder)}`);
    expect(view.cellList).toHaveLength(4);
    const failed = view.cellList.find((c) => c.status === "failed")!;
    expect(failed).toMatchObject({ x: 0, y: 0, z: 0, image: null, labels: ["OUT03 = 0", "clip_skip = 1"] });
    expect(failed.error).toMatch(/CUDA out of memory/);
    const cell = view.cellList.find((c) => c.x === 1 && c.y === 1)!;
    expect(cell).toMatchObject({ status: "done", labels: ["OUT03 = 0.5", "clip_skip = 2"] });
    expect(cell.params).toMatchObject({ clipSkip: 2, prompt: "a bowl of gyoza" });
    expect(cell.image).toBe(`/grids/${id(gridFolder)}/cells/${cell.n}/image`);
  });

  it("streams a cell's PNG byte for byte and the whole grid.png", async () => {
    const view = await json<GridView>(`/api/grids/${id(gridFolder)}`);
    const cell = view.cellList.find((c) => c.x === 1 && c.y === 0)!;
    const response = await get(`/api${cell.image}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await response.arrayBuffer())).toEqual(
      readFileSync(join(gridFolder, "cells", "1_0_0.png")),
    );
    const whole = await get(`/api${view.image}`);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer())).toEqual(readFileSync(join(gridFolder, "grid.png")));
  });

  it("gives a cell's recipe with paths from the server's base folder and that cell's OUT03 weight", async () => {
    const view = await json<GridView>(`/api/grids/${id(gridFolder)}`);
    const half = view.cellList.find((c) => c.x === 1 && c.y === 0)!;
    const { yaml } = await json<GridCellRecipe>(`/api${half.recipe}`);
    const recipe = loadRecipe(yaml, { sourceName: "cell" });
    expect(recipe.inputs.a?.path).toBe("models/a.safetensors");
    const alpha = recipe.steps.mix!.alpha as number[];
    expect(alpha[17]).toBe(0.5); // BASE, IN00–IN11, M00, OUT00–OUT03
    const zero = view.cellList.find((c) => c.x === 0 && c.y === 1)!;
    const other = loadRecipe((await json<GridCellRecipe>(`/api${zero.recipe}`)).yaml, { sourceName: "cell" });
    expect((other.steps.mix!.alpha as number[])[17]).toBe(0);
  });

  it("answers 404 for a cell number the grid does not have", async () => {
    const response = await get(`/api/grids/${id(gridFolder)}/cells/99/image`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as ApiError).error.message).toMatch(/no cell 99 \(it has 4\)/);
  });
});

describe("GET /api/openapi.json", () => {
  it("documents every grid route", async () => {
    const doc = await json<{ paths: Record<string, { get?: { summary: string } }> }>("/api/openapi.json");
    for (const path of [
      "/api/grids",
      "/api/grids/{id}",
      "/api/grids/{id}/image",
      "/api/grids/{id}/cells/{n}/image",
      "/api/grids/{id}/cells/{n}/recipe",
    ])
      expect(doc.paths[path]?.get?.summary, path).toBeTruthy();
  });
});

describe("grid routes refuse hostile requests and grid files", () => {
  it("refuses a grid id naming a folder outside the allowed folders (403)", async () => {
    const response = await get(`/api/grids/${id(join(outside, "grid"))}/cells/1/image`);
    expect(response.status).toBe(403);
    expect(((await response.json()) as ApiError).error.code).toBe("forbidden-path");
  });

  it("refuses a grid id with ../ in it (403)", async () => {
    const response = await get(`/api/grids/${id(`${gridFolder}/../../..${outside}/grid`)}`);
    expect(response.status, await response.clone().text()).toBe(403);
  });

  it("refuses a grid id that is not base64url (400)", async () => {
    expect((await get("/api/grids/..%2F..%2Fetc")).status).toBe(400);
  });

  it("refuses a grid.json whose cell image points outside its folder, naming the field (400)", async () => {
    const response = await get(`/api/grids/${id(join(dir, "grids", "hostile"))}/cells/1/image`);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as ApiError;
    expect(error.code).toBe("format");
    expect(error.message).toMatch(/not a valid gyoza grid index: cells\.1\.image/);
    expect(error.fix).toMatch(/gyoza grid/);
  });

  it("refuses a cell image that is a symlink out of the grid folder", async () => {
    const view = await json<GridView>(`/api/grids/${id(join(dir, "grids", "linked"))}`);
    const cell = view.cellList.find((c) => c.x === 1 && c.y === 0)!;
    const response = await get(`/api${cell.image}`);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(await response.text()).not.toContain("not for you");
  });

  it("refuses every grid route without the token (401)", async () => {
    const view = await json<GridView>(`/api/grids/${id(gridFolder)}`);
    const cell = view.cellList.find((c) => c.status === "done")!;
    for (const path of [
      "/api/grids",
      `/api/grids/${view.id}`,
      `/api${view.image}`,
      `/api${cell.image}`,
      `/api${cell.recipe}`,
    ]) {
      expect((await get(path, null)).status, path).toBe(401);
      expect((await get(path, "wrong-token-wrong-token")).status, path).toBe(401);
    }
  });
});
