import { type Dirent, realpathSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { GyozaError } from "../errors.js";
import * as z from "../zod.js";
import { GRID_INDEX_FILE, MAX_GRID_INDEX_BYTES } from "./run-grid.js";

/**
 * Grids on disk as something else reads them (`gyoza serve`): grid.json is untrusted bytes — a file
 * anyone could have put in a model folder — so it is validated strictly here, and every file it names
 * must be one of the names `gyoza grid` writes (`cells/<x>_<y>_<z>.png`, `recipes/<key>.yaml`) inside
 * the grid's own folder. `readGridIndex` (resume) only checks the fields resume needs.
 */

const CELL_IMAGE = /^cells\/\d{1,6}_\d{1,6}_\d{1,6}\.png$/;
const CELL_RECIPE = /^recipes\/[0-9a-f]{64}\.yaml$/;
/** More cells than any grid a person looks at (a 3-axis grid of 100 values each is 10⁶). */
const MAX_CELLS = 100_000;
const index = z.int().check(z.nonnegative(), z.maximum(999_999));
const text = (max: number) => z.string().check(z.maxLength(max));

export const GridCellSchema = z.looseObject({
  x: index,
  y: index,
  z: index,
  labels: z.array(text(1000)).check(z.maxLength(3)),
  status: z.enum(["done", "failed"]),
  error: z.optional(text(10_000)),
  recipeKey: z.optional(z.string().check(z.regex(/^[0-9a-f]{64}$/))),
  checkpoint: z.optional(text(1000)),
  recipeFile: z.optional(z.string().check(z.regex(CELL_RECIPE, "must be recipes/<64 hex>.yaml"))),
  image: z.optional(z.string().check(z.regex(CELL_IMAGE, "must be cells/<x>_<y>_<z>.png"))),
  params: z.record(z.string(), z.unknown()),
  finishedAt: z.optional(text(100)),
});

export const GridFileSchema = z.looseObject({
  gyoza_grid: z.literal(1),
  title: z.optional(text(1000)),
  axes: z
    .array(
      z.looseObject({
        axis: z.enum(["x", "y", "z"]),
        parameter: text(1000),
        labels: z.array(text(1000)).check(z.maxLength(1000)),
      }),
    )
    .check(z.minLength(1), z.maxLength(3)),
  base: z.optional(z.record(z.string(), z.unknown())),
  backend: z.optional(text(1000)),
  cells: z.array(GridCellSchema).check(z.maxLength(MAX_CELLS)),
  created: z.optional(text(100)),
  updated: z.optional(text(100)),
});
export type GridFile = z.infer<typeof GridFileSchema>;
export type GridFileCell = z.infer<typeof GridCellSchema>;

/** Reads and validates `<folder>/grid.json`; a GyozaError (format/limit/io) naming the bad field otherwise. */
export async function readGridFolder(folder: string): Promise<GridFile> {
  const file = join(folder, GRID_INDEX_FILE);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (cause) {
    throw new GyozaError("io", `${folder} holds no grid (no ${GRID_INDEX_FILE}: not found)`, { file, cause });
  }
  if (size > MAX_GRID_INDEX_BYTES) {
    throw new GyozaError("limit", `grid.json is ${size} bytes; at most ${MAX_GRID_INDEX_BYTES}`, { file });
  }
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, "utf8"));
  } catch (cause) {
    throw new GyozaError("format", `${file} is not JSON: ${(cause as Error).message}`, {
      file,
      fix: "run the same gyoza grid command again to rewrite it",
      cause,
    });
  }
  const parsed = GridFileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join(".") : "(top level)";
    throw new GyozaError("format", `${file} is not a valid gyoza grid index: ${where}: ${issue?.message}`, {
      file,
      fix: "only folders written by gyoza grid are shown; run the same gyoza grid command again to rewrite it",
    });
  }
  const grid = parsed.data;
  const sizes = [0, 1, 2].map((axis) => grid.axes[axis]?.labels.length ?? 1);
  for (const [position, cell] of grid.cells.entries()) {
    if (cell.x >= sizes[0]! || cell.y >= sizes[1]! || cell.z >= sizes[2]!) {
      throw new GyozaError("format", `${file}: cells.${position} lies outside the grid's axes`, { file });
    }
  }
  return grid;
}

/**
 * A file a grid names (`cells/…png`, `recipes/…yaml`), resolved inside the grid folder: the name must
 * match what gyoza grid writes and the real path (symlinks followed) must stay in the folder.
 */
export function gridMember(folder: string, name: string | undefined, kind: "image" | "recipe"): string {
  const pattern = kind === "image" ? CELL_IMAGE : CELL_RECIPE;
  if (name === undefined || !pattern.test(name)) {
    throw new GyozaError("format", `the grid names its ${kind} as ${JSON.stringify(name)}, not a grid file`);
  }
  const path = resolve(folder, name);
  let real: string;
  try {
    real = realpathSync.native(path);
  } catch (cause) {
    throw new GyozaError("io", `${path}: not found`, { file: path, cause });
  }
  const realFolder = realpathSync.native(folder);
  const rel = relative(realFolder, real);
  if (rel.startsWith(`..${sep}`) || rel === ".." || resolve(realFolder, rel) !== real) {
    throw new GyozaError("format", `${name} leads outside the grid folder (a symlink)`, { file: path });
  }
  return path;
}

export interface FoundGrid {
  folder: string;
  grid?: GridFile;
  /** Why the folder's grid.json could not be read (shown, not hidden: the user made that grid). */
  problem?: string;
}

export interface FindGridsOptions {
  /** Folder levels below each root (default 6). */
  maxDepth?: number;
  /** Directory entries read in all, across roots (default 50 000): a huge model folder never stalls a request. */
  maxEntries?: number;
}

/**
 * Every grid folder (one holding grid.json) under the roots, breadth first, without following
 * symlinked folders, skipping hidden and unreadable ones, and not descending into a grid.
 */
export async function findGridFolders(
  roots: readonly string[],
  options: FindGridsOptions = {},
): Promise<FoundGrid[]> {
  const maxDepth = options.maxDepth ?? 6;
  let budget = options.maxEntries ?? 50_000;
  const found: FoundGrid[] = [];
  const seen = new Set<string>();
  const queue: { folder: string; depth: number }[] = roots.map((root) => ({
    folder: resolve(root),
    depth: 0,
  }));
  while (queue.length > 0 && budget > 0) {
    const { folder, depth } = queue.shift()!;
    if (seen.has(folder)) continue;
    seen.add(folder);
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch {
      continue;
    }
    budget -= entries.length;
    if (entries.some((entry) => entry.isFile() && entry.name === GRID_INDEX_FILE)) {
      try {
        found.push({ folder, grid: await readGridFolder(folder) });
      } catch (error) {
        found.push({ folder, problem: (error as Error).message });
      }
      continue;
    }
    if (depth >= maxDepth) continue;
    for (const entry of entries) {
      if (entry.isDirectory() && !entry.name.startsWith(".") && entry.name !== "node_modules")
        queue.push({ folder: join(folder, entry.name), depth: depth + 1 });
    }
  }
  return found;
}
