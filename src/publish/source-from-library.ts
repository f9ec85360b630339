import { basename } from "node:path";
import { GyozaError, isGyozaError } from "../errors.js";
import { type LibraryStore, modelPage, type VersionView } from "../library/index.js";
import { importMergeRecipe } from "../lineage/import-merge-recipe.js";
import { saveRecipe } from "../recipe/index.js";
import { fileStem, versionTitle } from "./file-names.js";
import type { PublishRecipe, PublishSource } from "./publish-source.js";

/**
 * The PublishSource of `MODEL@VERSION` (or a file of the version) from the library's model page:
 * the version's files still on disk, its usage fields, its recipe (A1111 / supermerger records
 * imported as gyoza recipes where they can be expressed), its parents with their own recipes when
 * their files are in the library, and its sample images. A model with several versions needs one
 * named.
 */
export function publishSourceFromLibrary(store: LibraryStore, ref: string): PublishSource {
  const page = modelPage(store, ref);
  if (page.versions.length !== 1) {
    const names = page.versions.map((version) => version.name ?? `#${version.id}`).join(", ");
    throw new GyozaError(
      "usage",
      page.versions.length === 0
        ? `${page.model.name} has no versions`
        : `${page.model.name} has ${page.versions.length} versions`,
      { fix: `name one: ${page.model.name}@VERSION (${names || "none"})` },
    );
  }
  const version = page.versions[0]!;
  const versionName = version.name ?? `version ${version.id}`;
  const recipe = recipeOf(version, versionTitle(page.model.name, versionName).replace(/ /g, "-"));
  const usage = version.usage;
  const files = version.files.filter((file) => !file.missing);
  return {
    model: {
      name: page.model.name,
      type: page.model.type,
      checkpointType: recipe || version.parents.length > 0 ? "Merge" : null,
      tags: page.model.tags,
    },
    version: {
      name: versionName,
      baseModel: version.baseModel,
      description: usage.description,
      trainedWords: usage.trainedWords,
      clipSkip: usage.clipSkip,
      license: usage.license,
      tags: usage.tags,
      negativeEmbeddings: usage.negativeEmbeddings,
      vae: usage.vae ? { name: usage.vae, path: vaeFileNamed(store, usage.vae) } : null,
      usage: usage.notes,
    },
    files: files.map((file) => ({ path: file.path, type: file.type })),
    recipe,
    parents: version.parents.map((parent) => {
      const local = parent.local.find((file) => !file.missing);
      const name = parent.name ?? local?.model ?? parent.role ?? parent.sha256?.slice(0, 10) ?? "unknown";
      return { name, recipe: local ? parentRecipe(store, local.path, name) : null };
    }),
    images: [
      ...new Set([
        ...version.images.filter((image) => !image.missing).map((image) => image.path),
        ...previewsOf(store, version),
      ]),
    ].map((path) => ({ path })),
  };
}

/** The previews other tools saved beside the version's files (`NAME.preview.png`): sample images too. */
function previewsOf(store: LibraryStore, version: VersionView): string[] {
  return version.files.flatMap((file) =>
    store
      .sidecarFactsOf(file.id)
      .filter((fact) => fact.fact === "preview")
      .map((fact) => JSON.parse(fact.value) as unknown)
      .filter((value): value is string => typeof value === "string"),
  );
}

/** The version's recipe as gyoza YAML: gyoza's own, or an A1111 / supermerger record imported. */
function recipeOf(version: VersionView, name: string): PublishRecipe | null {
  const recipe = version.recipe;
  if (!recipe) return null;
  if (recipe.yaml) return { name, text: recipe.yaml };
  if (recipe.format !== "a1111" && recipe.format !== "supermerger") return null;
  try {
    const imported = importMergeRecipe({ sd_merge_recipe: recipe.text });
    if (!imported.recipe) return null;
    return {
      name,
      text: `# imported by gyoza from the file's ${recipe.format} sd_merge_recipe\n${saveRecipe(imported.recipe)}`,
    };
  } catch (error) {
    if (isGyozaError(error)) return null;
    throw error;
  }
}

/** A parent's own recipe, from the library version its file belongs to (none when it records none). */
function parentRecipe(store: LibraryStore, path: string, name: string): PublishRecipe | null {
  try {
    const page = modelPage(store, path);
    const version = page.versions.find((view) => view.files.some((file) => file.path === path));
    return version
      ? recipeOf(version, fileStem(name.replace(/\.(safetensors|ckpt|pt|pth|bin)$/i, "")))
      : null;
  } catch (error) {
    if (isGyozaError(error)) return null;
    throw error;
  }
}

/** A VAE file of the library named like the version's recommended VAE (by file name or stem). */
function vaeFileNamed(store: LibraryStore, name: string): string | null {
  const stem = (text: string) =>
    text
      .toLowerCase()
      .replace(/\.(safetensors|ckpt|pt|bin)$/, "")
      .replace(/\.vae$/, "");
  const wanted = stem(basename(name));
  const rows = store.db
    .prepare<[], { path: string }>("SELECT path FROM files WHERE kind = 'vae' AND missing = 0 ORDER BY path")
    .all();
  return rows.find((row) => stem(basename(row.path)) === wanted)?.path ?? null;
}
