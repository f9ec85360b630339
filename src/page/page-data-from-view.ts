import type { CivitaiHashes } from "../library/index.js";
import type { ModelView, VersionView } from "../library/model-view.js";
import { type Family, isFamily } from "../merge/index.js";
import type { ModelPageData, PageFile, PageVersion } from "./model-page-data.js";

/**
 * The library's view of a model (`modelPage`) as the page shows it: Civitai's hash names plus the
 * usual CRC32 byte order and kohya's full AutoV3, the recipe with the family its charts are drawn
 * for, parents by their best-known hash.
 */
export function pageDataFromView(view: ModelView): ModelPageData {
  return {
    model: {
      name: view.model.name,
      type: view.model.type,
      tags: view.model.tags,
      description: view.model.description,
    },
    versions: view.versions.map(pageVersion),
  };
}

function pageVersion(version: VersionView): PageVersion {
  const family = version.files.map((file) => file.family).find((value) => value !== null && isFamily(value));
  return {
    name: version.name ?? `version ${version.id}`,
    baseModel: version.baseModel,
    createdAt: version.createdAt,
    files: version.files.map(
      (file): PageFile => ({
        name: file.name,
        type: file.type,
        sizeBytes: file.sizeBytes,
        fp: file.fp,
        size: file.size,
        format: file.format,
        hashes: file.hashes ? pageHashes(file.hashes) : {},
        missing: file.missing,
      }),
    ),
    recipe: version.recipe
      ? {
          recipe: version.recipe.recipe,
          summary: version.recipe.summary,
          family: (family ?? "sd1") as Family,
        }
      : null,
    parents: version.parents.map((parent) => ({
      name: parent.name ?? parent.role ?? "unnamed model",
      hash: parent.autov2 ?? parent.sha256 ?? parent.autov3 ?? parent.legacyHash,
    })),
    images: version.images.map((image) => ({ path: image.path, generation: image.generation })),
    usage: {
      clipSkip: version.usage.clipSkip,
      vae: version.usage.vae,
      negativeEmbeddings: version.usage.negativeEmbeddings,
      trainedWords: version.usage.trainedWords,
      notes: version.usage.notes,
    },
  };
}

function pageHashes(hashes: CivitaiHashes): Record<string, string | null> {
  return {
    SHA256: hashes.SHA256,
    AutoV1: hashes.AutoV1,
    AutoV2: hashes.AutoV2,
    AutoV3: hashes.AutoV3,
    "AutoV3 (full)": hashes.autoV3Full,
    BLAKE3: hashes.BLAKE3,
    CRC32: hashes.CRC32,
    "CRC32 (IEEE)": hashes.crc32Ieee,
  };
}
