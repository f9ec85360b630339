import { mkdir, writeFile } from "node:fs/promises";
import { GyozaError } from "../errors.js";
import { type FileHashes, hashFiles } from "../hash/index.js";
import { AtomicFolder } from "../io/atomic-folder.js";
import { loadKernel } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { type FileIdentity, identifyFile } from "../library/identify-file.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { civitaiVersionJson } from "./civitai-json.js";
import { fileStem, uniqueName } from "./file-names.js";
import { modelCard } from "./model-card.js";
import { publishImages } from "./publish-images.js";
import type { CivitaiFileHashes, PublishedFile, PublishManifest } from "./publish-manifest.js";
import {
  convertVariants,
  copyOriginals,
  ModelFileLayout,
  type PlannedFile,
  type PublishVariant,
  writeCkptTwins,
  writeVae,
} from "./publish-model-files.js";
import type { PublishSource } from "./publish-source.js";

export interface PublishOptions {
  /** The folder to lay out; it must not exist or be empty unless `force`. */
  dir: string;
  variants?: readonly PublishVariant[];
  /** Also write a PickleTensor (.ckpt) twin of every safetensors checkpoint published. */
  ckpt?: boolean;
  /** Publish the version's VAE as its own file when it names one (default true). */
  vae?: boolean;
  /** Replace an existing non-empty `dir` as a whole. */
  force?: boolean;
  kernel?: MergeKernel;
  onProgress?: ProgressListener;
}

/**
 * Lays out what a mixer uploads for one version: its files, the requested converted variants and
 * .ckpt twins, the VAE as its own file, recipes/*.yaml, images/ (bytes unchanged), a Hugging Face
 * model card README.md and civitai.json. Everything is built in a staging folder beside `dir` and
 * renamed into place once complete; any failure leaves no `dir` (and an existing one untouched).
 */
export async function publishVersion(
  source: PublishSource,
  options: PublishOptions,
): Promise<PublishManifest> {
  const onProgress = options.onProgress ?? noProgress;
  const primary = await primaryCheckpoint(source, options);
  const folder = await AtomicFolder.create(options.dir, {
    replace: options.force ?? false,
    fix: "publish into a new folder, or pass --force to replace this one as a whole",
  });
  try {
    const kernel = options.kernel ?? (await loadKernel());
    const layout = new ModelFileLayout(folder, kernel, onProgress);
    await copyOriginals(layout, source);
    if (primary) await convertVariants(layout, source, primary, options.variants ?? []);
    if (primary && options.ckpt) await writeCkptTwins(layout, primary.path);
    if (source.version.vae && options.vae !== false) await writeVae(layout, source.version.vae, primary);
    const { planned, notes } = layout;

    const recipes = await writeRecipes(source, folder);
    const images = await publishImages(source.images ?? [], folder, onProgress, notes);
    const files = await describeFiles(planned, folder, onProgress);
    await writeFile(folder.path("README.md"), modelCard({ source, files, images, recipes }));
    await writeFile(
      folder.path("civitai.json"),
      `${JSON.stringify(civitaiVersionJson(source, files, images), null, 2)}\n`,
    );
    await folder.commit();
    return {
      dir: folder.target,
      model: source.model.name,
      version: source.version.name,
      files,
      images,
      recipes,
      readme: "README.md",
      civitai: "civitai.json",
      ...(notes.length ? { notes } : {}),
    };
  } catch (error) {
    await folder.abort();
    throw error;
  }
}

/** The checkpoint variants are converted from: the version's first file that identifies as one. */
async function primaryCheckpoint(
  source: PublishSource,
  options: PublishOptions,
): Promise<{ path: string; identity: FileIdentity } | undefined> {
  if (source.files.length === 0) {
    throw new GyozaError("usage", `${source.model.name} ${source.version.name} has no files to publish`, {
      fix: "add the version's files to the library first",
    });
  }
  for (const file of source.files) {
    const identity = await identifyFile(file.path);
    if (identity.kind === "unreadable") {
      throw new GyozaError("format", `cannot be published: ${identity.unreadableReason}`, {
        file: file.path,
      });
    }
    if (identity.kind === "checkpoint") return { path: file.path, identity };
  }
  if ((options.variants?.length ?? 0) > 0) {
    throw new GyozaError("usage", "converted variants need a checkpoint, and the version has none", {
      file: source.files[0]!.path,
    });
  }
  return undefined;
}

/** recipes/NAME.yaml for the version's recipe and each parent's, as saved (bytes of the text). */
async function writeRecipes(source: PublishSource, folder: AtomicFolder): Promise<string[]> {
  const all = [
    ...(source.recipe ? [source.recipe] : []),
    ...(source.parents ?? []).flatMap((parent) => (parent.recipe ? [parent.recipe] : [])),
  ];
  if (all.length === 0) return [];
  await mkdir(folder.path("recipes"));
  const names: string[] = [];
  for (const recipe of all) {
    const name = uniqueName(`recipes/${fileStem(recipe.name.replace(/\.ya?ml$/i, ""))}.yaml`, names);
    await writeFile(folder.path(name), recipe.text.endsWith("\n") ? recipe.text : `${recipe.text}\n`);
    names.push(name);
  }
  return names;
}

/** Hashes every published model file in one pass each and reads its Civitai facts from its header. */
async function describeFiles(
  planned: readonly PlannedFile[],
  folder: AtomicFolder,
  onProgress: ProgressListener,
): Promise<PublishedFile[]> {
  const hashed = await hashFiles(
    planned.map((file) => folder.path(file.name)),
    { cacheDir: false, onProgress },
  );
  const described: PublishedFile[] = [];
  for (const [index, file] of planned.entries()) {
    const identity = await identifyFile(folder.path(file.name));
    described.push({
      name: file.name,
      role: file.role,
      from: file.from,
      sizeBytes: hashed[index]!.size,
      type: file.type ?? identity.civitaiType,
      metadata: { fp: identity.fp, size: identity.sizeKind, format: identity.format },
      hashes: civitaiHashes(hashed[index]!.hashes),
    });
  }
  return described;
}

function civitaiHashes(hashes: FileHashes): CivitaiFileHashes {
  return {
    AutoV1: hashes.autoV1 ?? null,
    AutoV2: hashes.autoV2!,
    AutoV3: hashes.autoV3!,
    SHA256: hashes.sha256!,
    CRC32: hashes.crc32Civitai!,
    BLAKE3: hashes.blake3!,
  };
}
