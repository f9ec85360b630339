import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { GyozaError } from "../../errors.js";
import { ioError } from "../../io/byte-source.js";
import {
  findGridFolders,
  type GridFile,
  gridMember,
  readGridFolder,
} from "../../preview/read-grid-folder.js";
import { GRID_IMAGE_FILE } from "../../preview/run-grid.js";
import { loadRecipe, MAX_RECIPE_BYTES, relocateRecipe, saveRecipe } from "../../recipe/index.js";
import type { GridCellRecipe, GridSummary, GridView } from "../api-schemas.js";
import type { ServerContext } from "../create-server.js";
import { HttpError } from "../http-errors.js";

/** A grid's id: its folder, base64url (opaque to clients; decoded and confined on every request). */
function gridId(folder: string): string {
  return Buffer.from(folder, "utf8").toString("base64url");
}

function folderOf(id: string, context: ServerContext): string {
  if (!/^[A-Za-z0-9_-]{1,8192}$/.test(id)) throw new HttpError(400, "usage", "not a grid id");
  return context.confine(Buffer.from(id, "base64url").toString("utf8"));
}

function summaryOf(folder: string, grid: GridFile): Omit<GridSummary, "problem"> {
  return {
    id: gridId(folder),
    name: grid.title ?? basename(folder),
    folder,
    axes: grid.axes.map(({ axis, parameter, labels }) => ({ axis, parameter, labels })),
    cells: grid.axes.reduce((product, axis) => product * axis.labels.length, 1),
    done: grid.cells.filter((cell) => cell.status === "done").length,
    failed: grid.cells.filter((cell) => cell.status === "failed").length,
    created: grid.created ?? null,
  };
}

function cellOf(grid: GridFile, n: string) {
  const cell = /^\d{1,7}$/.test(n) ? grid.cells[Number(n)] : undefined;
  if (!cell) throw new HttpError(404, "not-found", `the grid has no cell ${n} (it has ${grid.cells.length})`);
  return cell;
}

/** Streams a PNG the grid names (404 when it is gone). */
async function sendPng(path: string, reply: import("fastify").FastifyReply) {
  try {
    if (!(await stat(path)).isFile()) throw new HttpError(404, "not-found", `${path} is not a file`);
  } catch (cause) {
    if (cause instanceof HttpError) throw cause;
    throw ioError(path, cause);
  }
  return reply.type("image/png").header("X-Content-Type-Options", "nosniff").send(createReadStream(path));
}

/**
 * XY grids made by `gyoza grid` under the allowed folders: the list, one grid's index with its axes
 * in the user's terms, each cell's image and recipe (for the builder), the whole grid.png. Read-only.
 */
export function registerGridRoutes(app: FastifyInstance, context: ServerContext): void {
  app.get("/api/grids", async (): Promise<GridSummary[]> => {
    const found = await findGridFolders(context.allowedRoots());
    return found.map(({ folder, grid, problem }) =>
      grid
        ? summaryOf(folder, grid)
        : {
            id: gridId(folder),
            name: basename(folder),
            folder,
            axes: [],
            cells: 0,
            done: 0,
            failed: 0,
            created: null,
            problem: problem ?? "unreadable",
          },
    );
  });

  app.get<{ Params: { id: string } }>("/api/grids/:id", async (request): Promise<GridView> => {
    const folder = folderOf(request.params.id, context);
    const grid = await readGridFolder(folder);
    const base = `/grids/${request.params.id}`;
    return {
      ...summaryOf(folder, grid),
      title: grid.title ?? null,
      backend: grid.backend ?? null,
      image: `${base}/image`,
      cellList: grid.cells.map((cell, n) => ({
        n,
        x: cell.x,
        y: cell.y,
        z: cell.z,
        labels: cell.labels,
        status: cell.status,
        error: cell.error ?? null,
        recipeKey: cell.recipeKey ?? null,
        checkpoint: cell.checkpoint ?? null,
        params: cell.params,
        image: cell.status === "done" && cell.image ? `${base}/cells/${n}/image` : null,
        recipe: cell.recipeFile ? `${base}/cells/${n}/recipe` : null,
      })),
    };
  });

  app.get<{ Params: { id: string } }>("/api/grids/:id/image", async (request, reply) => {
    const folder = folderOf(request.params.id, context);
    await readGridFolder(folder);
    return sendPng(context.confine(join(folder, GRID_IMAGE_FILE)), reply);
  });

  app.get<{ Params: { id: string; n: string } }>("/api/grids/:id/cells/:n/image", async (request, reply) => {
    const folder = folderOf(request.params.id, context);
    const cell = cellOf(await readGridFolder(folder), request.params.n);
    if (cell.image === undefined)
      throw new HttpError(404, "not-found", `cell ${request.params.n} has no image`);
    return sendPng(context.confine(gridMember(folder, cell.image, "image")), reply);
  });

  app.get<{ Params: { id: string; n: string } }>(
    "/api/grids/:id/cells/:n/recipe",
    async (request): Promise<GridCellRecipe> => {
      const folder = folderOf(request.params.id, context);
      const cell = cellOf(await readGridFolder(folder), request.params.n);
      if (cell.recipeFile === undefined)
        throw new HttpError(404, "not-found", `cell ${request.params.n} has no recipe (its merge failed)`);
      const file = context.confine(gridMember(folder, cell.recipeFile, "recipe"));
      let text: string;
      try {
        if ((await stat(file)).size > MAX_RECIPE_BYTES)
          throw new GyozaError("limit", `${file} is larger than ${MAX_RECIPE_BYTES} bytes`, { file });
        text = await readFile(file, "utf8");
      } catch (cause) {
        if (cause instanceof GyozaError) throw cause;
        throw ioError(file, cause);
      }
      // Its paths are relative to recipes/; the builder resolves them from the server's base folder,
      // and refuses ../ there: a file outside that folder is named by its absolute path instead.
      const recipe = loadRecipe(text, { sourceName: file });
      const baseDir = context.baseDir();
      const moved = relocateRecipe(recipe, join(folder, "recipes"), baseDir);
      const plain = (path: string) => (path.split(/[\\/]/).includes("..") ? resolve(baseDir, path) : path);
      for (const input of Object.values(moved.inputs)) input.path = plain(input.path);
      moved.output.path = plain(moved.output.path);
      if (moved.output.vae.file !== undefined) moved.output.vae.file = plain(moved.output.vae.file);
      return { yaml: saveRecipe(moved), file };
    },
  );
}
