import { basename } from "node:path";
import { isGyozaError } from "../errors.js";
import { detectGeneration, detectHiddenGeneration } from "../image/detect-generation.js";
import type { GenerationInfo, ResourceRef } from "../image/generators/generation-info.js";
import { isEmptyFileHash, normaliseHash } from "../image/image-link.js";
import { type ImageContainer, textsByKey } from "../image/metadata-types.js";
import { readImageMetadata } from "../image/read-image-metadata.js";
import { readStealthPngInfo } from "../image/stealth-pnginfo.js";
import { FileByteSource } from "../io/byte-source.js";
import type { LibraryDatabase } from "./open-library.js";
import type { WalkedFile } from "./walk-model-files.js";

/** Kinds of resource an image names, as the library stores them. */
export type ImageResourceKind = "checkpoint" | "vae" | "lora" | "embedding";

/** What reading one image gave: its generation data, or why it could not be read. */
export interface ReadImage {
  container: ImageContainer | null;
  width: number | null;
  height: number | null;
  /** Null when the image carries no generation data (a preview, a screenshot). */
  generation: GenerationInfo | null;
  /** Set when the file is no image the readers know, or reading it failed. */
  unreadableReason: string | null;
}

/** One resource an image names, normalised for linking. */
export interface ImageResource {
  kind: ImageResourceKind;
  name: string | null;
  /** Recorded hash, uppercase hex without `0x` / `blake3:`; null when none or unusable (the empty-file hash, < 8 digits). */
  hash: string | null;
  weight: number | null;
  civitaiVersionId: number | null;
  /** Lowercase file name without folders or extension, for resources recorded by name only. */
  nameStem: string | null;
}

/** An `images` row. */
export interface ImageRow {
  id: number;
  path: string;
  size: number;
  mtime_ms: number;
  inode: number;
  missing: 0 | 1;
  container: string | null;
  unreadable_reason: string | null;
  generation: string | null;
  generator: string | null;
  prompt: string | null;
  negative: string | null;
  seed: string | null;
  sampler: string | null;
  steps: number | null;
  cfg: number | null;
  clip_skip: number | null;
  model_hash: string | null;
  model_name: string | null;
  width: number | null;
  height: number | null;
  first_seen_at: string;
  scanned_at: string;
}

/** An `image_resources` row. */
export interface ImageResourceRow {
  image_id: number;
  position: number;
  kind: ImageResourceKind;
  name: string | null;
  hash: string | null;
  weight: number | null;
  civitai_version_id: number | null;
  name_stem: string | null;
}

/** Shortest recorded hash that is linked: fewer digits match by chance (as `gyoza image link`). */
const MIN_LINK_HASH_HEX = 8;
const MODEL_EXTENSION = /\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$/i;

/**
 * Reads an image's generation data with the image readers (container texts, then stealth pnginfo
 * for a PNG whose chunks hold none). The bytes are untrusted: any failure is the reason it is
 * unreadable, never an exception.
 */
export async function readLibraryImage(path: string): Promise<ReadImage> {
  let source: FileByteSource;
  try {
    source = await FileByteSource.open(path);
  } catch (error) {
    return unreadableImage(error);
  }
  try {
    const metadata = await readImageMetadata(source);
    let generation = detectGeneration(textsByKey(metadata.texts));
    if (!generation && metadata.container === "png") {
      const hidden = await readStealthPngInfo(source).catch(() => undefined);
      if (hidden) generation = detectHiddenGeneration(hidden.text);
    }
    return {
      container: metadata.container,
      width: metadata.width ?? generation?.width ?? null,
      height: metadata.height ?? generation?.height ?? null,
      generation: generation ?? null,
      unreadableReason: null,
    };
  } catch (error) {
    return unreadableImage(error);
  } finally {
    await source.close();
  }
}

function unreadableImage(error: unknown): ReadImage {
  const reason = isGyozaError(error)
    ? `${error.code}: ${error.describe()}`
    : `unexpected: ${error instanceof Error ? error.message : String(error)}`;
  return { container: null, width: null, height: null, generation: null, unreadableReason: reason };
}

/** The checkpoint, VAE, LoRAs and embeddings generation data names, ready to link by hash, AIR or name. */
export function imageResources(info: GenerationInfo): ImageResource[] {
  const out: ImageResource[] = [];
  const add = (kind: ImageResourceKind, ref: ResourceRef | undefined): void => {
    if (!ref || (ref.name === undefined && ref.hash === undefined && ref.air === undefined)) return;
    const hash = usableHash(ref.hash);
    const versionId = ref.air?.source.toLowerCase() === "civitai" ? Number(ref.air.versionId) : Number.NaN;
    const name = typeof ref.name === "string" ? ref.name : null;
    out.push({
      kind,
      name,
      hash,
      weight: typeof ref.weight === "number" && Number.isFinite(ref.weight) ? ref.weight : null,
      civitaiVersionId: Number.isSafeInteger(versionId) ? versionId : null,
      nameStem: name !== null && !ref.air ? nameStem(name) : null,
    });
  };
  add("checkpoint", info.model);
  add("vae", info.vae);
  for (const lora of info.loras) add("lora", lora);
  for (const embedding of info.embeddings) add("embedding", embedding);
  return out;
}

function usableHash(hash: string | undefined): string | null {
  if (typeof hash !== "string" || isEmptyFileHash(hash)) return null;
  const { value } = normaliseHash(hash);
  return /^[0-9a-f]+$/.test(value) && value.length >= MIN_LINK_HASH_HEX && value.length <= 64
    ? value.toUpperCase()
    : null;
}

/** `SDXL\\juggernaut_v9.safetensors` → `juggernaut_v9`. */
export function nameStem(name: string): string | null {
  const stem = basename(name.replace(/\\/g, "/")).replace(MODEL_EXTENSION, "").trim().toLowerCase();
  return stem === "" ? null : stem;
}

type ImageValues = Omit<ImageRow, "id" | "missing" | "first_seen_at" | "scanned_at"> & { now: string };

/** The library's image rows: written one image per transaction, like model files. */
export class LibraryImages {
  private readonly statements;

  constructor(readonly db: LibraryDatabase) {
    this.statements = {
      byPath: db.prepare<[string], ImageRow>("SELECT * FROM images WHERE path = ?"),
      byId: db.prepare<[number], ImageRow>("SELECT * FROM images WHERE id = ?"),
      under: db.prepare<{ folder: string; prefix: string }, ImageRow>(
        "SELECT * FROM images WHERE path = @folder OR substr(path, 1, length(@prefix)) = @prefix",
      ),
      markMissing: db.prepare<[number]>("UPDATE images SET missing = 1 WHERE id = ?"),
      markSeen: db.prepare<[string, number]>("UPDATE images SET scanned_at = ?, missing = 0 WHERE id = ?"),
      insert: db.prepare<ImageValues>(
        `INSERT INTO images (path, size, mtime_ms, inode, missing, container, unreadable_reason, generation,
           generator, prompt, negative, seed, sampler, steps, cfg, clip_skip, model_hash, model_name, width,
           height, first_seen_at, scanned_at)
         VALUES (@path, @size, @mtime_ms, @inode, 0, @container, @unreadable_reason, @generation, @generator,
           @prompt, @negative, @seed, @sampler, @steps, @cfg, @clip_skip, @model_hash, @model_name, @width,
           @height, @now, @now)`,
      ),
      update: db.prepare<ImageValues & { id: number }>(
        `UPDATE images SET size = @size, mtime_ms = @mtime_ms, inode = @inode, missing = 0,
           container = @container, unreadable_reason = @unreadable_reason, generation = @generation,
           generator = @generator, prompt = @prompt, negative = @negative, seed = @seed, sampler = @sampler,
           steps = @steps, cfg = @cfg, clip_skip = @clip_skip, model_hash = @model_hash,
           model_name = @model_name, width = @width, height = @height, scanned_at = @now
         WHERE id = @id`,
      ),
      deleteResources: db.prepare<[number]>("DELETE FROM image_resources WHERE image_id = ?"),
      insertResource: db.prepare<ImageResourceRow>(
        `INSERT INTO image_resources (image_id, position, kind, name, hash, weight, civitai_version_id, name_stem)
         VALUES (@image_id, @position, @kind, @name, @hash, @weight, @civitai_version_id, @name_stem)`,
      ),
      resourcesOf: db.prepare<[number], ImageResourceRow>(
        "SELECT * FROM image_resources WHERE image_id = ? ORDER BY position",
      ),
    };
  }

  byPath(path: string): ImageRow | undefined {
    return this.statements.byPath.get(path);
  }

  byId(id: number): ImageRow | undefined {
    return this.statements.byId.get(id);
  }

  under(folder: string): ImageRow[] {
    return this.statements.under.all({ folder, prefix: `${folder}/` });
  }

  resourcesOf(imageId: number): ImageResourceRow[] {
    return this.statements.resourcesOf.all(imageId);
  }

  markMissing(ids: readonly number[]): void {
    this.db
      .transaction(() => {
        for (const id of ids) this.statements.markMissing.run(id);
      })
      .immediate();
  }

  markSeen(ids: readonly number[]): void {
    const now = new Date().toISOString();
    this.db
      .transaction(() => {
        for (const id of ids) this.statements.markSeen.run(now, id);
      })
      .immediate();
  }

  /** Writes one image and the resources it names in one IMMEDIATE transaction. Returns whether it was new. */
  write(file: WalkedFile, read: ReadImage): { id: number; added: boolean } {
    const write = this.db.transaction(() => {
      const values = imageValues(file, read, new Date().toISOString());
      const existing = this.statements.byPath.get(file.path);
      let id: number;
      if (existing) {
        id = existing.id;
        this.statements.update.run({ ...values, id });
      } else id = Number(this.statements.insert.run(values).lastInsertRowid);
      this.statements.deleteResources.run(id);
      const resources = read.generation ? imageResources(read.generation) : [];
      resources.forEach((resource, position) => {
        this.statements.insertResource.run({
          image_id: id,
          position,
          kind: resource.kind,
          name: resource.name,
          hash: resource.hash,
          weight: resource.weight,
          civitai_version_id: resource.civitaiVersionId,
          name_stem: resource.nameStem,
        });
      });
      return { id, added: existing === undefined };
    });
    return write.immediate();
  }
}

function imageValues(file: WalkedFile, read: ReadImage, now: string): ImageValues {
  const info = read.generation;
  const model = info?.model;
  return {
    path: file.path,
    size: file.size,
    mtime_ms: file.mtimeMs,
    inode: file.inode,
    container: read.container,
    unreadable_reason: read.unreadableReason,
    generation: info ? JSON.stringify(info) : null,
    generator: info?.generator ?? null,
    prompt: info?.prompt ?? null,
    negative: info?.negativePrompt ?? null,
    seed: info?.seed === undefined ? null : String(info.seed),
    sampler: info?.sampler ?? null,
    steps: finiteOrNull(info?.steps),
    cfg: finiteOrNull(info?.cfgScale),
    clip_skip: finiteOrNull(info?.clipSkip),
    model_hash: usableHash(model?.hash) ?? null,
    model_name: model?.name ?? null,
    width: finiteOrNull(read.width ?? undefined),
    height: finiteOrNull(read.height ?? undefined),
    now,
  };
}

function finiteOrNull(value: number | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}
