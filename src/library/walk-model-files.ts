import type { Dirent } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { extname, join, resolve } from "node:path";
import { GyozaError } from "../errors.js";
import { ioError } from "../io/byte-source.js";
import { MODEL_FILE_EXTENSIONS } from "../lineage/search-by-hash.js";

/** Model folders are shallow; anything deeper is a mistake (or a link loop that realpath missed). */
export const MAX_WALK_DEPTH = 16;
/** More model files than this under the given folders is the wrong folder (a whole disk): refuse rather than hash it all. */
export const MAX_WALK_FILES = 100_000;

/** Images a library keeps as samples (their generation data links them to models): by extension, then sniffed. */
export const IMAGE_FILE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp", ".avif"];

export interface WalkedFile {
  /** Absolute path as found (through any symlinked folder), the path the library records. */
  path: string;
  size: number;
  mtimeMs: number;
  inode: number;
}

/**
 * Every model file under the folders (a file given directly counts too), sorted by path. Symlinks
 * are followed, to files and to folders; each real folder is walked once, so a link loop or two
 * links to one folder never repeat files. Unreadable subfolders are skipped (a scan goes on); a
 * missing root is an error, since marking everything under it missing would be wrong.
 */
export async function walkModelFiles(roots: readonly string[]): Promise<WalkedFile[]> {
  return (await walkLibraryFiles(roots)).models;
}

/**
 * Model files and image files under the folders, each list sorted by path, in one walk (the rules
 * of `walkModelFiles`). A root that is a file is an image when its extension says so, else a model.
 */
export async function walkLibraryFiles(
  roots: readonly string[],
): Promise<{ models: WalkedFile[]; images: WalkedFile[] }> {
  const files = new Map<string, WalkedFile>();
  const images = new Map<string, WalkedFile>();
  const seenFolders = new Set<string>();
  const visit = async (path: string, depth: number, isRoot: boolean): Promise<void> => {
    let stats: Awaited<ReturnType<typeof stat>>;
    try {
      stats = await stat(path);
    } catch (cause) {
      if (isRoot) throw ioError(path, cause);
      return; // a dangling link or a file that vanished mid-walk
    }
    if (stats.isFile()) {
      const extension = extname(path).toLowerCase();
      const found = { path, size: stats.size, mtimeMs: stats.mtimeMs, inode: stats.ino };
      if (IMAGE_FILE_EXTENSIONS.includes(extension)) {
        if (images.size >= MAX_WALK_FILES) {
          throw new GyozaError("limit", `more than ${MAX_WALK_FILES} images under ${roots.join(", ")}`, {
            fix: "add the model and sample-image folders themselves, not a folder above them",
          });
        }
        images.set(path, found);
        return;
      }
      if (!isRoot && !MODEL_FILE_EXTENSIONS.includes(extension)) return;
      if (files.size >= MAX_WALK_FILES) {
        throw new GyozaError("limit", `more than ${MAX_WALK_FILES} model files under ${roots.join(", ")}`, {
          fix: "add the model folders themselves, not a folder above them",
        });
      }
      files.set(path, found);
      return;
    }
    if (!stats.isDirectory() || depth > MAX_WALK_DEPTH) return;
    const real = await realpath(path).catch(() => path);
    if (seenFolders.has(real)) return;
    seenFolders.add(real);
    let entries: Dirent[];
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch (cause) {
      if (isRoot) throw ioError(path, cause);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.isFile() || entry.isDirectory() || entry.isSymbolicLink())
        await visit(join(path, entry.name), depth + 1, false);
    }
  };
  for (const root of roots) await visit(resolve(root), 0, true);
  const sorted = (map: Map<string, WalkedFile>): WalkedFile[] =>
    [...map.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { models: sorted(files), images: sorted(images) };
}
