import { realpathSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { HttpError } from "./http-errors.js";

/** The real path of `path`, or of its nearest existing ancestor joined with the rest (for outputs not yet written). */
function realpathOfExisting(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    const parent = dirname(path);
    if (parent === path) return path;
    return resolve(realpathOfExisting(parent), relative(parent, path));
  }
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/**
 * A path from a request, allowed only inside the library roots and the `--models` folders: `../`
 * segments are refused outright, and the resolved path with every symlink followed must lie inside
 * a root (with its symlinks followed too). Anything else is a 403.
 */
export function confinePath(path: string, baseDir: string, roots: readonly string[]): string {
  if (path.includes("\0")) throw new HttpError(400, "usage", "a path holds a NUL byte");
  if (path.split(/[\\/]/).includes("..")) {
    throw new HttpError(
      403,
      "forbidden-path",
      `${path}: paths with ../ are refused`,
      "name files inside the library roots or --models folders",
    );
  }
  const absolute = resolve(baseDir, path);
  const real = realpathOfExisting(absolute);
  for (const root of roots) {
    if (isInside(absolute, resolve(root)) && isInside(real, realpathOfExisting(resolve(root))))
      return absolute;
  }
  throw new HttpError(
    403,
    "forbidden-path",
    `${path} is outside the library roots and --models folders`,
    "add its folder with `gyoza library add` or start gyoza serve with --models DIR",
  );
}
