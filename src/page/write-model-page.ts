import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, mkdir, open, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { GyozaError } from "../errors.js";
import { ioError } from "../io/byte-source.js";
import { noProgress, type ProgressListener } from "../progress.js";
import type { ModelPageData } from "./model-page-data.js";
import { type PageImageFiles, renderModelPage } from "./render-model-page.js";
import { makeThumbnail } from "./thumbnails.js";

export interface WriteModelPageOptions {
  /** Replace an existing page folder (it stays whole until the new one is complete). */
  replace?: boolean;
  onProgress?: ProgressListener;
}

export interface WrittenImage {
  source: string;
  /** Paths inside the page folder; null when the source file is gone. */
  original: string | null;
  thumbnail: string | null;
  problem: string | null;
}

export interface WrittenModelPage {
  folder: string;
  /** The page itself: `<folder>/index.html`. */
  page: string;
  images: WrittenImage[];
}

/** Longest file name kept from an image's own name (the rest is cut; a number keeps names apart). */
const MAX_NAME_CHARS = 80;

/**
 * Writes a model page folder: `index.html`, `images/` (each sample image copied byte for byte, so
 * its generation metadata stays) and `thumbnails/` (WebP made with sharp). Everything goes into a
 * staging folder beside the target, fsynced, then renamed into place: an interrupted or failed run
 * leaves no half-written page. An image that cannot be copied fails the page (it would be missing
 * from it); one that cannot be thumbnailed is shown as "no preview" with the reason.
 */
export async function writeModelPage(
  data: ModelPageData,
  folder: string,
  options: WriteModelPageOptions = {},
): Promise<WrittenModelPage> {
  const target = resolve(folder);
  const onProgress = options.onProgress ?? noProgress;
  if (!options.replace && (await exists(target))) {
    throw new GyozaError("usage", `${target} already exists`, {
      file: target,
      fix: "choose another folder, or replace it (gyoza page --replace)",
    });
  }
  const staging = join(
    dirname(target),
    `.${basename(target)}.${randomBytes(4).toString("hex")}.gyoza-partial`,
  );
  try {
    await mkdir(join(staging, "images"), { recursive: true });
    await mkdir(join(staging, "thumbnails"));
  } catch (cause) {
    await rm(staging, { recursive: true, force: true });
    throw ioError(target, cause);
  }
  try {
    const sources = [
      ...new Set(data.versions.flatMap((version) => version.images.map((image) => image.path))),
    ];
    const sizes = await Promise.all(
      sources.map(async (source) => (await stat(source).catch(() => null))?.size),
    );
    onProgress({
      type: "start",
      task: "thumbnails",
      totalBytes: sizes.reduce<number>((sum, size) => sum + (size ?? 0), 0),
    });
    const written: WrittenImage[] = [];
    for (const [index, source] of sources.entries()) {
      if (sizes[index] === undefined) {
        // a library row whose file has gone: the page says so rather than failing
        written.push({ source, original: null, thumbnail: null, problem: "file not found" });
        continue;
      }
      const name = `${String(index + 1).padStart(3, "0")}-${safeName(basename(source))}`;
      const original = `images/${name}`;
      await copyFile(source, join(staging, original), constants.COPYFILE_EXCL);
      await syncFile(join(staging, original));
      const thumbnail = await makeThumbnail(source);
      let thumbnailPath: string | null = null;
      if (thumbnail.ok) {
        thumbnailPath = `thumbnails/${name.replace(/\.[^.]*$/, "")}.webp`;
        await writeFile(join(staging, thumbnailPath), thumbnail.bytes, { flag: "wx", flush: true });
      }
      written.push({
        source,
        original,
        thumbnail: thumbnailPath,
        problem: thumbnail.ok ? null : thumbnail.problem,
      });
      onProgress({ type: "advance", bytes: sizes[index]!, item: source });
    }
    onProgress({ type: "finish", task: "thumbnails" });
    const files = new Map<string, PageImageFiles>(written.map((image) => [image.source, image]));
    await writeFile(join(staging, "index.html"), renderModelPage(data, files), { flag: "wx", flush: true });
    for (const sub of ["images", "thumbnails", "."]) await syncFile(join(staging, sub));
    await moveIntoPlace(staging, target);
    return {
      folder: target,
      page: join(target, "index.html"),
      images: written.map((image) => ({ ...image })),
    };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (error instanceof GyozaError) throw error;
    throw ioError(target, error);
  }
}

/** The staged folder takes the target's place; an old target is moved aside first, removed last. */
async function moveIntoPlace(staging: string, target: string): Promise<void> {
  const aside = `${staging}.old`;
  const hadOld = await exists(target);
  if (hadOld) await rename(target, aside);
  try {
    await rename(staging, target);
  } catch (error) {
    if (hadOld) await rename(aside, target).catch(() => {});
    throw error;
  }
  await syncFile(dirname(target));
  if (hadOld) await rm(aside, { recursive: true, force: true });
}

/** Letters, digits, dot, dash, underscore: safe in every file system and in a URL path. */
function safeName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^\.+/, "");
  return (cleaned || "image").slice(-MAX_NAME_CHARS);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
