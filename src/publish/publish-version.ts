import { mkdir, writeFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import { convertCheckpoint } from "../engine/convert-checkpoint.js";
import { GyozaError } from "../errors.js";
import { type FileHashes, hashFiles } from "../hash/index.js";
import { AtomicFolder, copyWithProgress } from "../io/atomic-folder.js";
import { loadKernel } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { type FileIdentity, identifyFile } from "../library/identify-file.js";
import { noProgress, type ProgressListener } from "../progress.js";
import { civitaiVersionJson } from "./civitai-json.js";
import { extractBakedVae } from "./extract-vae.js";
import { fileStem, uniqueName, versionTitle } from "./file-names.js";
import { modelCard } from "./model-card.js";
import { publishImages } from "./publish-images.js";
import type { CivitaiFileHashes, PublishedFile, PublishedRole, PublishManifest } from "./publish-manifest.js";
import type { PublishSource } from "./publish-source.js";

/** The converted copies `publishVersion` can add beside the version's own files. */
export const PUBLISH_VARIANTS = ["fp16-pruned", "fp32-full"] as const;
export type PublishVariant = (typeof PUBLISH_VARIANTS)[number];

const VARIANT_CONVERSIONS: Record<
  PublishVariant,
  { dtype: "F16" | "F32"; prune: boolean; type: string; fp: string; size: string }
> = {
  "fp16-pruned": { dtype: "F16", prune: true, type: "Pruned Model", fp: "fp16", size: "pruned" },
  "fp32-full": { dtype: "F32", prune: false, type: "Model", fp: "fp32", size: "full" },
};

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

/** A file laid out before hashing: its folder name, role, origin and Civitai type if decided. */
interface PlannedFile {
  name: string;
  role: PublishedRole;
  from: string;
  type: string | null;
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
  const checkpoint = primary?.path;
  const folder = await AtomicFolder.create(options.dir, { replace: options.force ?? false });
  try {
    const planned: PlannedFile[] = [];
    const take = (file: PlannedFile): string => {
      if (planned.some((other) => other.name.toLowerCase() === file.name.toLowerCase())) {
        throw new GyozaError("usage", `two published files would both be named ${file.name}`, {
          file: file.from,
          fix: "rename one of the version's files",
        });
      }
      planned.push(file);
      return folder.path(file.name);
    };

    for (const file of source.files) {
      const name = basename(file.path);
      await copyWithProgress(
        file.path,
        take({ name, role: "original", from: file.path, type: file.type ?? null }),
        onProgress,
      );
    }

    const kernel = options.kernel ?? (checkpoint || options.vae !== false ? await loadKernel() : undefined);
    const notes: string[] = [];
    const stem = fileStem(versionTitle(source.model.name, source.version.name).replace(/ /g, "-"));
    for (const variant of options.variants ?? []) {
      const conversion = VARIANT_CONVERSIONS[variant];
      const own = primary!.identity;
      // converting never brings EMA back: a pruned file's fp32 copy is pruned too, and named so
      const size = conversion.prune ? "pruned" : (own.sizeKind ?? "full");
      if (own.format === "SafeTensor" && own.fp === conversion.fp && own.sizeKind === size) {
        // the same tensors again under another name: a second file with nothing new to download
        notes.push(`${basename(checkpoint!)} already is ${conversion.fp} ${size}; no converted copy written`);
        continue;
      }
      const name = `${stem}-${conversion.fp}-${size}.safetensors`;
      const output = take({ name, role: variant, from: checkpoint!, type: conversion.type });
      await convertCheckpoint({
        input: checkpoint!,
        output,
        dtype: conversion.dtype,
        prune: conversion.prune,
        kernel: kernel!,
        onProgress,
      });
    }

    if (options.ckpt) {
      const checkpoints = planned.filter(
        (file) => (file.role === "original" && file.from === checkpoint) || file.role in VARIANT_CONVERSIONS,
      );
      for (const file of checkpoints) {
        if (extname(file.name).toLowerCase() !== ".safetensors") continue;
        const name = `${file.name.slice(0, -".safetensors".length)}.ckpt`;
        const output = take({ name, role: "ckpt", from: file.name, type: file.type });
        await convertCheckpoint({ input: folder.path(file.name), output, kernel: kernel!, onProgress });
      }
    }

    const vae = source.version.vae;
    if (vae && options.vae !== false && !planned.some((file) => file.type === "VAE")) {
      if (vae.path) {
        const name = basename(vae.path);
        await copyWithProgress(
          vae.path,
          take({ name, role: "vae", from: vae.path, type: "VAE" }),
          onProgress,
        );
      } else if (checkpoint && (await identifyFile(checkpoint)).bakedVae) {
        const name = `${fileStem(vae.name.replace(/\.(safetensors|ckpt|pt|vae\.pt|bin)$/i, ""))}.safetensors`;
        const output = take({ name, role: "vae", from: checkpoint, type: "VAE" });
        await extractBakedVae(checkpoint, output, { kernel: kernel!, onProgress });
      } else {
        notes.push(`the version names the VAE ${vae.name}, but neither its file nor a baked copy is at hand`);
      }
    }

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
