import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { GyozaError, isGyozaError } from "../../errors.js";
import { defaultHashCacheDir } from "../../hash/index.js";
import {
  addToLibrary,
  defaultLibraryPath,
  type FindQuery,
  findEntries,
  groupFiles,
  type ImageView,
  imageViewById,
  type LibraryEntry,
  LibraryStore,
  listEntries,
  listModels,
  type ModelView,
  modelPage,
  modelView,
  openLibrary,
  rescanLibrary,
  type ScanSummary,
  setVersionFields,
  showEntry,
  VERSION_FIELD_NAMES,
  type VersionFields,
} from "../../library/index.js";
import { collectFlag, hashCacheOption, integerFlag } from "../flags.js";
import { formatBytes, printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";
import { baseUrlOption, fetchLibraryFromCivitai, printFetchSummary } from "./civitai.js";

interface LibraryFlags {
  library?: string;
  json?: boolean;
}

export function registerLibrary(program: Command): void {
  const library = program
    .command("library")
    .description(
      "the model library: every local model file with its kind, hashes and sidecar facts (SQLite)",
    );

  libraryCommand(library, "add", "add folders (or files) to the library and scan them")
    .argument("<paths...>", "model folders or files")
    .addOption(hashCacheOption("hash new files again even if the hash cache knows them"))
    .action(async (paths: string[], flags: LibraryFlags & { hashCache: boolean }) => {
      const summary = await withStore(flags, (store) => addToLibrary(store, paths, scanOptions(flags)));
      printSummary(summary, flags);
    });

  libraryCommand(
    library,
    "scan",
    "scan every folder of the library again (only new or changed files are hashed)",
  )
    .addOption(hashCacheOption("hash new files again even if the hash cache knows them"))
    .action(async (flags: LibraryFlags & { hashCache: boolean }) => {
      const summary = await withStore(flags, (store) => rescanLibrary(store, scanOptions(flags)));
      printSummary(summary, flags);
    });

  libraryCommand(library, "list", "list the files of the library (or its models, or its images)")
    .option("--no-missing", "leave out files that are no longer on disk")
    .option("--models", "list the models with their versions and files instead")
    .option("--images", "list the sample images with the models they name instead")
    .action(async (flags: LibraryFlags & { missing: boolean; models?: boolean; images?: boolean }) => {
      if (flags.models && flags.images)
        throw new GyozaError("usage", "--models and --images list different things: give one");
      if (flags.models) {
        const views = await withStore(flags, (store) =>
          listModels(store).map((model) => modelView(store, model)),
        );
        if (flags.json) printJson(views);
        else process.stdout.write(formatModelList(views));
        return;
      }
      if (flags.images) {
        const images = await withStore(flags, (store) =>
          store.db
            .prepare<[], { id: number }>("SELECT id FROM images ORDER BY path")
            .all()
            .map((row) => imageViewById(store, row.id)!)
            .filter((image) => flags.missing || !image.missing),
        );
        if (flags.json) printJson(images);
        else process.stdout.write(formatImageList(images));
        return;
      }
      const entries = await withStore(flags, (store) =>
        listEntries(store, { includeMissing: flags.missing }),
      );
      printEntries(entries, flags);
    });

  libraryCommand(
    library,
    "show",
    "everything the library knows about one file, or a model with its versions (MODEL[@VERSION])",
  )
    .argument("<ref>", "a file path, a prefix of any of its hashes, an image path, or MODEL[@VERSION]")
    .action(async (ref: string, flags: LibraryFlags) => {
      const shown = await withStore(flags, (store) => showFileOrModel(store, ref));
      if (flags.json) printJson(shown.entry ?? shown.image ?? shown.model);
      else if (shown.entry) process.stdout.write(formatEntryDetails(shown.entry));
      else if (shown.image) process.stdout.write(formatImageDetails(shown.image));
      else process.stdout.write(formatModelView(shown.model!));
    });

  libraryCommand(library, "find", "files matching every criterion given")
    .option("--name <text>", "part of the file name or of a model/version name")
    .option("--tag <tag>", "a tag from a sidecar or set by hand")
    .option("--base <base>", 'base model ("SD 1.5") or detected family (sd1, sdxl)')
    .option("--hash <prefix>", "a prefix of any of the six hashes")
    .option(
      "--parent <model>",
      "made from this model (name, file or hash), directly or through merges of merges",
    )
    .action(async (flags: LibraryFlags & FindQuery) => {
      const query: FindQuery = {
        name: flags.name,
        tag: flags.tag,
        base: flags.base,
        hash: flags.hash,
        parent: flags.parent,
      };
      const entries = await withStore(flags, (store) => findEntries(store, query));
      printEntries(entries, flags);
    });

  libraryCommand(library, "group", "put files into a model's version by hand")
    .argument("<files...>", "library files (paths or hash prefixes)")
    .requiredOption("--model <name>", "the model (created when no model has this name)")
    // not --version: the program's own --version would answer it
    .option("--version-name <name>", "the version (default: the first file's name)")
    .action(async (files: string[], flags: LibraryFlags & { model: string; versionName?: string }) => {
      const grouped = await withStore(flags, (store) => {
        const target = { model: flags.model, version: flags.versionName };
        const { model, version } = groupFiles(store, files, target);
        return modelView(store, model, [version]);
      });
      if (flags.json) printJson(grouped);
      else process.stdout.write(formatModelView(grouped));
    });

  libraryCommand(
    library,
    "set",
    "set a version's fields by hand (they win over sidecars and provenance, and survive re-scans)",
  )
    .argument("<model>", "MODEL[@VERSION] (a model with one version needs no @VERSION)")
    .option("--name <name>", "the version's name")
    .option("--base-model <base>", 'base model ("SD 1.5", "SDXL 1.0", "Pony")')
    .option(
      "--clip-skip <n>",
      "recommended clip skip (1 = last CLIP layer)",
      integerFlag("--clip-skip", 1, 12),
    )
    .option("--vae <file>", "recommended VAE")
    .option("--negative <embedding>", "a recommended negative embedding (repeat for more)", collectFlag)
    .option("--trained-word <word>", "a trigger word (repeat for more)", collectFlag)
    .option("--description-file <file>", "the description, from a Markdown file")
    .option("--tag <tag>", "a tag (repeat for more; replaces the tags)", collectFlag)
    .option("--license <license>", "the license (name or SPDX id)")
    .option("--created <date>", "when the version was made or published (orders versions)")
    .option(
      "--clear <field>",
      `forget a hand-set field (${VERSION_FIELD_NAMES.join(", ")}; repeat for more)`,
      collectFlag,
    )
    .action(async (ref: string, flags: LibraryFlags & SetFlags) => {
      const fields = await fieldsFromFlags(flags);
      const shown = await withStore(flags, (store) => {
        const { model, version } = setVersionFields(store, ref, fields);
        return modelView(store, model, [version]);
      });
      if (flags.json) printJson(shown);
      else process.stdout.write(formatModelView(shown));
    });

  libraryCommand(
    library,
    "fetch",
    "look up on Civitai (by SHA256) every file without Civitai facts and store the answers as facts (source civitai-api); no sidecar is written",
  )
    .addOption(baseUrlOption())
    .action(async (flags: LibraryFlags & { baseUrl: string }) => {
      const summary = await withStore(flags, (store) => fetchLibraryFromCivitai(store, flags));
      printFetchSummary(summary, flags);
    });
}

function libraryCommand(parent: Command, name: string, description: string): Command {
  return parent
    .command(name)
    .description(description)
    .addOption(
      new Option(
        "--library <file>",
        "the library database (default: $GYOZA_LIBRARY or ~/.local/share/gyoza/library.db)",
      ),
    )
    .option("--json", "print JSON");
}

async function withStore<T>(flags: LibraryFlags, use: (store: LibraryStore) => T | Promise<T>): Promise<T> {
  const db = openLibrary(flags.library ?? defaultLibraryPath());
  try {
    return await use(new LibraryStore(db));
  } finally {
    db.close();
  }
}

function scanOptions(flags: LibraryFlags & { hashCache: boolean }) {
  return {
    cacheDir: flags.hashCache ? defaultHashCacheDir() : (false as const),
    onProgress: progressBar({ quiet: flags.json }),
  };
}

function printSummary(summary: ScanSummary, flags: LibraryFlags): void {
  if (flags.json) {
    printJson(summary);
    return;
  }
  const parts = [
    `${summary.files} files`,
    `${summary.added} added`,
    `${summary.changed} changed`,
    `${summary.moved} moved`,
    `${summary.unchanged} unchanged`,
    `${summary.missing} missing`,
    `${summary.unreadable} unreadable`,
  ];
  const { images } = summary;
  const imageParts =
    images.files === 0 && images.missing === 0
      ? ""
      : `; ${images.files} image${images.files === 1 ? "" : "s"}: ${[
          `${images.added} added`,
          `${images.changed} changed`,
          `${images.unchanged} unchanged`,
          `${images.missing} missing`,
          `${images.withGeneration} with generation data`,
          `${images.unreadable} unreadable`,
        ].join(", ")}`;
  process.stdout.write(`${parts.join(", ")}${imageParts}\n`);
}

function printEntries(entries: readonly LibraryEntry[], flags: LibraryFlags): void {
  if (flags.json) {
    printJson(entries);
    return;
  }
  const lines = entries.map((entry) =>
    [
      entry.kind.padEnd(10),
      (entry.metadata.fp ?? "-").padEnd(5),
      (entry.hashes?.AutoV2 ?? "-").padEnd(10),
      formatBytes(entry.sizeBytes).padStart(9),
      `${entry.path}${entry.missing ? "  (missing)" : ""}`,
    ].join("  "),
  );
  process.stdout.write(lines.length > 0 ? `${lines.join("\n")}\n` : "no files\n");
}

function formatEntryDetails(entry: LibraryEntry): string {
  const lines = [`${entry.path}${entry.missing ? "  (missing)" : ""}`];
  const row = (label: string, value: string | null | undefined): void => {
    if (value !== null && value !== undefined && value !== "") lines.push(`  ${label.padEnd(14)}${value}`);
  };
  row("kind", entry.kind);
  row("unreadable", entry.unreadableReason);
  row("architecture", entry.architecture);
  row("components", entry.components.join(", "));
  row("baked VAE", entry.bakedVae === null ? null : entry.bakedVae ? "yes" : "no");
  row("size", formatBytes(entry.sizeBytes));
  row("type", entry.type);
  row(
    "metadata",
    [entry.metadata.format, entry.metadata.size, entry.metadata.fp].filter(Boolean).join(" · "),
  );
  for (const [name, value] of Object.entries(entry.hashes ?? {})) row(name, value ?? "-");
  for (const version of entry.versions) {
    const ids = `civitai ${version.model.civitaiModelId ?? "-"}@${version.civitaiVersionId ?? "-"}`;
    row(
      "version",
      `${version.model.name} ${version.name ?? ""} (${version.baseModel ?? "base unknown"}; ${ids})  [${version.source}]`,
    );
  }
  if (entry.provenance) {
    row("title", entry.provenance.title);
    row("recipe", entry.provenance.recipeFormat);
    for (const parent of entry.provenance.parents) {
      const hash = parent.sha256 ?? parent.autov3 ?? parent.autov2 ?? parent.legacyHash ?? "no hash";
      row(`parent ${parent.role ?? ""}`.trimEnd(), `${parent.name ?? "?"} ${hash}`);
    }
  }
  for (const fact of entry.sidecars) {
    const value = typeof fact.value === "string" ? fact.value : JSON.stringify(fact.value);
    row(fact.fact, `${value.length > 120 ? `${value.slice(0, 117)}...` : value}  [${fact.source}]`);
  }
  return `${lines.join("\n")}\n`;
}

interface SetFlags {
  name?: string;
  baseModel?: string;
  clipSkip?: number;
  vae?: string;
  negative?: string[];
  trainedWord?: string[];
  descriptionFile?: string;
  tag?: string[];
  license?: string;
  created?: string;
  clear?: string[];
}

/** A description is Markdown, a few pages at most. */
const MAX_DESCRIPTION_BYTES = 1_000_000;

type FieldChanges = { [K in keyof VersionFields]?: VersionFields[K] | null };

async function fieldsFromFlags(flags: SetFlags): Promise<FieldChanges> {
  const fields: FieldChanges = {
    name: flags.name,
    baseModel: flags.baseModel,
    clipSkip: flags.clipSkip,
    vae: flags.vae,
    negativeEmbeddings: flags.negative,
    trainedWords: flags.trainedWord,
    tags: flags.tag,
    license: flags.license,
    createdAt: flags.created,
  };
  if (flags.descriptionFile !== undefined) {
    const file = flags.descriptionFile;
    const bytes = await readFile(file).catch((cause: unknown) => {
      throw new GyozaError("io", `cannot read the description: ${(cause as Error).message}`, { file });
    });
    if (bytes.length > MAX_DESCRIPTION_BYTES)
      throw new GyozaError("limit", `the description is over ${MAX_DESCRIPTION_BYTES} bytes`, { file });
    fields.description = bytes.toString("utf8");
  }
  for (const name of flags.clear ?? []) {
    if (!(VERSION_FIELD_NAMES as readonly string[]).includes(name))
      throw new GyozaError("usage", `"${name}" is not a version field`, {
        path: "--clear",
        fix: `one of ${VERSION_FIELD_NAMES.join(", ")}`,
      });
    if (fields[name as keyof VersionFields] !== undefined)
      throw new GyozaError("usage", `--clear ${name} and a new ${name} at once`, { path: "--clear" });
    (fields as Record<string, unknown>)[name] = null;
  }
  if (Object.values(fields).every((value) => value === undefined))
    throw new GyozaError("usage", "nothing to set", { fix: "give a field, e.g. --clip-skip 2" });
  return fields;
}

/** A file (path or hash prefix) shows as a file; anything else is looked up as MODEL[@VERSION]. */
function showFileOrModel(
  store: LibraryStore,
  ref: string,
): { entry?: LibraryEntry; model?: ModelView; image?: ImageView } {
  try {
    return { entry: showEntry(store, ref) };
  } catch (fileError) {
    if (!isGyozaError(fileError, "usage")) throw fileError;
    const imageId = store.db
      .prepare<[string, string], { id: number }>("SELECT id FROM images WHERE path IN (?, ?)")
      .get(resolve(ref), ref)?.id;
    if (imageId !== undefined) return { image: imageViewById(store, imageId)! };
    try {
      return { model: modelPage(store, ref) };
    } catch (modelError) {
      if (!isGyozaError(modelError, "usage")) throw modelError;
      // a hash prefix is a file reference first: its own message ("no file has a hash starting …") says more
      throw /^[0-9a-f]{4,}$/i.test(ref) ? fileError : modelError;
    }
  }
}

function formatModelList(views: readonly ModelView[]): string {
  if (views.length === 0) return "no models\n";
  const lines: string[] = [];
  for (const { model, versions } of views) {
    lines.push(`${model.name}  (${model.type ?? "type unknown"}; ${model.source})`);
    for (const version of versions) {
      const files = version.files.map((file) => file.name).join(", ");
      const recipe = version.recipe ? `  [${version.recipe.format} recipe]` : "";
      lines.push(
        `  @${version.name ?? `#${version.id}`}  ${version.baseModel ?? "base unknown"}  ${files || "no files"}${recipe}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

function formatImageList(images: readonly ImageView[]): string {
  if (images.length === 0) return "no images\n";
  const lines = images.map((image) => {
    const checkpoint = image.resources.find((resource) => resource.kind === "checkpoint");
    const local = checkpoint?.local[0];
    let model: string;
    if (local) model = `${local.model ?? local.path}${local.version ? `@${local.version}` : ""}`;
    else if (checkpoint)
      model = `${checkpoint.name ?? "?"} [${checkpoint.hash ?? "no hash"}] (not in the library)`;
    else if (image.unreadableReason) model = `unreadable: ${image.unreadableReason}`;
    else model = image.generation ? "no model named" : "no generation data";
    return `${image.path}${image.missing ? "  (missing)" : ""}  ${model}`;
  });
  return `${lines.join("\n")}\n`;
}

function formatModelView(view: ModelView): string {
  const { model } = view;
  const civitaiModel = model.civitaiModelId === null ? "" : `; civitai ${model.civitaiModelId}`;
  const lines = [`${model.name}  (${model.type ?? "type unknown"}; ${model.source}${civitaiModel})`];
  const row = (indent: number, label: string, value: string | number | null | undefined): void => {
    if (value === null || value === undefined || value === "") return;
    lines.push(`${" ".repeat(indent)}${label.padEnd(14)}${value}`);
  };
  for (const version of view.versions) {
    const civitai = version.civitaiVersionId === null ? "" : `; civitai ${version.civitaiVersionId}`;
    lines.push(
      `version ${version.name ?? `#${version.id}`}  (${version.baseModel ?? "base unknown"}; ${version.createdAt ?? "date unknown"}; ${version.source}${civitai})`,
    );
    for (const file of version.files) {
      const facts = [file.format, file.size, file.fp, formatBytes(file.sizeBytes)]
        .filter(Boolean)
        .join(" · ");
      row(2, "file", `${file.path}${file.missing ? "  (missing)" : ""}  ${facts}`);
      for (const [name, value] of Object.entries(file.hashes ?? {})) row(4, name, value ?? "-");
    }
    if (version.recipe) row(2, "recipe", `${version.recipe.summary}  [${version.recipe.format}]`);
    for (const parent of version.parents) {
      const hash = parent.sha256 ?? parent.autov3 ?? parent.autov2 ?? parent.legacyHash ?? "no hash";
      const local = parent.local[0];
      const where = local
        ? `  → ${local.path}${local.model ? ` (${local.model}${local.version ? `@${local.version}` : ""})` : ""}`
        : "  (not in the library)";
      row(2, `parent ${parent.role ?? ""}`.trimEnd(), `${parent.name ?? "?"} ${hash}${where}`);
    }
    const usage = version.usage;
    const from = (field: string): string => (version.sources[field] ? `  [${version.sources[field]}]` : "");
    row(2, "clip skip", usage.clipSkip === null ? null : `${usage.clipSkip}${from("clipSkip")}`);
    row(2, "VAE", usage.vae === null ? null : `${usage.vae}${from("vae")}`);
    row(2, "negative", usage.negativeEmbeddings.join(", "));
    row(2, "trained words", usage.trainedWords.join(", "));
    row(2, "tags", usage.tags.join(", "));
    row(2, "license", usage.license);
    if (usage.description !== null) {
      const text = usage.description.replace(/\s+/g, " ").trim();
      row(2, "description", `${text.length > 120 ? `${text.slice(0, 117)}...` : text}${from("description")}`);
    }
    row(2, "notes", usage.notes);
    for (const image of version.images) {
      const info = image.generation;
      const settings = info
        ? [
            info.seed === undefined ? null : `seed ${info.seed}`,
            info.sampler,
            info.steps === undefined ? null : `${info.steps} steps`,
            info.cfgScale === undefined ? null : `CFG ${info.cfgScale}`,
            info.clipSkip === undefined ? null : `clip skip ${info.clipSkip}`,
          ]
            .filter(Boolean)
            .join(", ")
        : "no generation data";
      row(2, "image", `${image.path}${image.missing ? "  (missing)" : ""}  ${settings}`);
    }
  }
  if (view.versions.length === 0) lines.push("  no versions");
  return `${lines.join("\n")}\n`;
}

function formatImageDetails(image: ImageView): string {
  const lines = [`${image.path}${image.missing ? "  (missing)" : ""}`];
  const row = (label: string, value: string | number | null | undefined): void => {
    if (value !== null && value !== undefined && value !== "") lines.push(`  ${label.padEnd(14)}${value}`);
  };
  row("unreadable", image.unreadableReason);
  row("size", image.width !== null && image.height !== null ? `${image.width}x${image.height}` : null);
  const info = image.generation;
  if (!info && !image.unreadableReason) row("generation", "none recorded");
  if (info) {
    row("generator", info.generator);
    row("prompt", info.prompt);
    row("negative", info.negativePrompt);
    row("seed", info.seed === undefined ? null : String(info.seed));
    row("sampler", info.sampler);
    row("steps", info.steps);
    row("CFG scale", info.cfgScale);
    row("clip skip", info.clipSkip);
  }
  for (const resource of image.resources) {
    const local = resource.local[0];
    const where = local
      ? `  → ${local.path}${local.model ? ` (${local.model}${local.version ? `@${local.version}` : ""})` : ""} [${local.via}]`
      : "  (not in the library)";
    const weight = resource.weight === null ? "" : ` @${resource.weight}`;
    row(resource.kind, `${resource.name ?? "?"}${weight} ${resource.hash ?? ""}`.trimEnd() + where);
  }
  return `${lines.join("\n")}\n`;
}
