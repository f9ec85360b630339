import { mkdir } from "node:fs/promises";
import { basename } from "node:path";
import { isGyozaError } from "../errors.js";
import { detectGeneration, readImageMetadata, textsByKey } from "../image/index.js";
import type { AtomicFolder } from "../io/atomic-folder.js";
import { copyWithProgress } from "../io/atomic-folder.js";
import { FileByteSource } from "../io/byte-source.js";
import type { ProgressListener } from "../progress.js";
import { fileStem, uniqueName } from "./file-names.js";
import type { PublishedImage } from "./publish-manifest.js";

/**
 * Copies the sample images into images/ byte for byte (never re-encoded: their generation
 * metadata is what a model page is asked to keep), then reads that metadata back from the copy for
 * the card and civitai.json. An image whose metadata cannot be read is still published, with a note.
 */
export async function publishImages(
  images: readonly { path: string }[],
  folder: AtomicFolder,
  onProgress: ProgressListener,
  notes: string[],
): Promise<PublishedImage[]> {
  if (images.length === 0) return [];
  await mkdir(folder.path("images"));
  const published: PublishedImage[] = [];
  for (const image of images) {
    const file = basename(image.path);
    const dot = file.lastIndexOf(".");
    const extension =
      dot > 0
        ? file
            .slice(dot)
            .toLowerCase()
            .replace(/[^.a-z0-9]/g, "")
        : "";
    const name = uniqueName(
      `images/${fileStem(dot > 0 ? file.slice(0, dot) : file)}${extension}`,
      published.map((other) => other.name),
    );
    await copyWithProgress(image.path, folder.path(name), onProgress);
    published.push({ name, from: image.path, ...(await generationOf(folder.path(name), name, notes)) });
  }
  return published;
}

async function generationOf(
  path: string,
  name: string,
  notes: string[],
): Promise<Pick<PublishedImage, "width" | "height" | "generation">> {
  const source = await FileByteSource.open(path);
  try {
    const metadata = await readImageMetadata(source);
    return {
      width: metadata.width ?? null,
      height: metadata.height ?? null,
      generation: detectGeneration(textsByKey(metadata.texts)) ?? null,
    };
  } catch (error) {
    if (!isGyozaError(error)) throw error;
    notes.push(`${name}: no generation metadata read (${error.message})`);
    return { width: null, height: null, generation: null };
  } finally {
    await source.close();
  }
}
