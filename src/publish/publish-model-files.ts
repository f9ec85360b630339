import { basename, extname } from "node:path";
import { convertCheckpoint } from "../engine/convert-checkpoint.js";
import { GyozaError } from "../errors.js";
import { type AtomicFolder, copyWithProgress } from "../io/atomic-folder.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import type { FileIdentity } from "../library/identify-file.js";
import type { ProgressListener } from "../progress.js";
import { extractBakedVae } from "./extract-vae.js";
import { fileStem, versionTitle } from "./file-names.js";
import type { PublishedRole } from "./publish-manifest.js";
import type { PublishSource } from "./publish-source.js";

/** The converted copies `publishVersion` can add beside the version's own files. */
export const PUBLISH_VARIANTS = ["fp16-pruned", "fp32-full"] as const;
export type PublishVariant = (typeof PUBLISH_VARIANTS)[number];

const VARIANT_CONVERSIONS: Record<
  PublishVariant,
  { dtype: "F16" | "F32"; prune: boolean; type: string; fp: string }
> = {
  "fp16-pruned": { dtype: "F16", prune: true, type: "Pruned Model", fp: "fp16" },
  "fp32-full": { dtype: "F32", prune: false, type: "Model", fp: "fp32" },
};

/** A model file laid out, before hashing: its name in the folder, role, origin and Civitai type if decided. */
export interface PlannedFile {
  name: string;
  role: PublishedRole;
  from: string;
  type: string | null;
}

/** What the steps below share: the folder being built, the files so far, notes, the kernel, progress. */
export class ModelFileLayout {
  readonly planned: PlannedFile[] = [];
  readonly notes: string[] = [];

  constructor(
    readonly folder: AtomicFolder,
    readonly kernel: MergeKernel,
    readonly onProgress: ProgressListener,
  ) {}

  /** Reserves a file name (case-insensitively unique) and returns the staging path to write. */
  take(file: PlannedFile): string {
    if (this.has(file.name)) {
      throw new GyozaError("usage", `two published files would both be named ${file.name}`, {
        file: file.from,
        fix: "rename one of the version's files",
      });
    }
    this.planned.push(file);
    return this.folder.path(file.name);
  }

  has(name: string): boolean {
    return this.planned.some((other) => other.name.toLowerCase() === name.toLowerCase());
  }
}

/** The version's own files, copied (reflinked where the file system can). */
export async function copyOriginals(layout: ModelFileLayout, source: PublishSource): Promise<void> {
  for (const file of source.files) {
    const output = layout.take({
      name: basename(file.path),
      role: "original",
      from: file.path,
      type: file.type ?? null,
    });
    await copyWithProgress(file.path, output, layout.onProgress);
  }
}

/**
 * The requested variants converted from the version's checkpoint by gyoza's converter, named by
 * what they hold; one that would equal the checkpoint itself is skipped with a note.
 */
export async function convertVariants(
  layout: ModelFileLayout,
  source: PublishSource,
  checkpoint: { path: string; identity: FileIdentity },
  variants: readonly PublishVariant[],
): Promise<void> {
  const stem = fileStem(versionTitle(source.model.name, source.version.name).replace(/ /g, "-"));
  const own = checkpoint.identity;
  for (const variant of variants) {
    const conversion = VARIANT_CONVERSIONS[variant];
    // converting never brings EMA back: a pruned file's fp32 copy is pruned too, and named so
    const size = conversion.prune ? "pruned" : (own.sizeKind ?? "full");
    if (own.format === "SafeTensor" && own.fp === conversion.fp && own.sizeKind === size) {
      // the same tensors again under another name: a second file with nothing new to download
      layout.notes.push(
        `${basename(checkpoint.path)} already is ${conversion.fp} ${size}; no converted copy written`,
      );
      continue;
    }
    const name = `${stem}-${conversion.fp}-${size}.safetensors`;
    const output = layout.take({ name, role: variant, from: checkpoint.path, type: conversion.type });
    await convertCheckpoint({
      input: checkpoint.path,
      output,
      dtype: conversion.dtype,
      prune: conversion.prune,
      kernel: layout.kernel,
      onProgress: layout.onProgress,
    });
  }
}

/** A PickleTensor (.ckpt) twin of the checkpoint and of each variant published as safetensors. */
export async function writeCkptTwins(layout: ModelFileLayout, checkpointPath: string): Promise<void> {
  const models = layout.planned.filter(
    (file) => (file.role === "original" && file.from === checkpointPath) || file.role in VARIANT_CONVERSIONS,
  );
  for (const file of models) {
    if (extname(file.name).toLowerCase() !== ".safetensors") continue;
    const name = `${file.name.slice(0, -".safetensors".length)}.ckpt`;
    if (layout.has(name)) {
      layout.notes.push(`${name} is one of the version's own files; no .ckpt written from ${file.name}`);
      continue;
    }
    const output = layout.take({ name, role: "ckpt", from: file.name, type: file.type });
    await convertCheckpoint({
      input: layout.folder.path(file.name),
      output,
      kernel: layout.kernel,
      onProgress: layout.onProgress,
    });
  }
}

/**
 * The VAE the version names, as its own file: its file when known, else the checkpoint's baked
 * VAE extracted; a note when neither is at hand. Nothing when a VAE file is already published.
 */
export async function writeVae(
  layout: ModelFileLayout,
  vae: { name: string; path?: string | null },
  checkpoint: { path: string; identity: FileIdentity } | undefined,
): Promise<void> {
  if (layout.planned.some((file) => file.type === "VAE")) return;
  if (vae.path) {
    const output = layout.take({ name: basename(vae.path), role: "vae", from: vae.path, type: "VAE" });
    await copyWithProgress(vae.path, output, layout.onProgress);
  } else if (checkpoint?.identity.bakedVae) {
    const stem = basename(vae.name.replace(/\\/g, "/")).replace(
      /(\.vae)?\.(safetensors|ckpt|pt|pth|bin)$/i,
      "",
    );
    const output = layout.take({
      name: `${fileStem(stem)}.safetensors`,
      role: "vae",
      from: checkpoint.path,
      type: "VAE",
    });
    await extractBakedVae(checkpoint.path, output, { kernel: layout.kernel, onProgress: layout.onProgress });
  } else {
    layout.notes.push(
      `the version names the VAE ${vae.name}, but neither its file nor a baked copy is at hand`,
    );
  }
}
