import { constants } from "node:fs";
import { copyFile, mkdir, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { GyozaError } from "../errors.js";
import { AtomicFolder } from "../io/atomic-folder.js";
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
 * its generation metadata stays) and `thumbnails/` (WebP made with sharp), as an {@link AtomicFolder}:
 * staged beside the target, fsynced, renamed into place, so an interrupted or failed run leaves no
 * half-written page and Ctrl-C removes the staging folder. An image that cannot be copied fails the page (it would be missing
 * from it); one that cannot be thumbnailed is shown as "no preview" with the reason.
 */
export async function writeModelPage(
  data: ModelPageData,
  folder: string,
  options: WriteModelPageOptions = {},
): Promise<WrittenModelPage> {
  const onProgress = options.onProgress ?? noProgress;
  const page = await AtomicFolder.create(folder, {
    replace: options.replace ?? false,
    fix: "choose another folder, or replace it (gyoza page --replace)",
  });
  try {
    await mkdir(page.path("images"));
    await mkdir(page.path("thumbnails"));
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
      await copyFile(source, page.path(original), constants.COPYFILE_EXCL);
      const thumbnail = await makeThumbnail(source);
      let thumbnailPath: string | null = null;
      if (thumbnail.ok) {
        thumbnailPath = `thumbnails/${name.replace(/\.[^.]*$/, "")}.webp`;
        await writeFile(page.path(thumbnailPath), thumbnail.bytes, { flag: "wx" });
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
    await writeFile(page.path("index.html"), renderModelPage(data, files), { flag: "wx" });
    await page.commit(); // fsyncs every file and folder, then renames it into place
    return {
      folder: page.target,
      page: join(page.target, "index.html"),
      images: written.map((image) => ({ ...image })),
    };
  } catch (error) {
    await page.abort();
    if (error instanceof GyozaError) throw error;
    throw ioError(page.target, error);
  }
}

/** Letters, digits, dot, dash, underscore: safe in every file system and in a URL path. */
function safeName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^\.+/, "");
  return (cleaned || "image").slice(-MAX_NAME_CHARS);
}
