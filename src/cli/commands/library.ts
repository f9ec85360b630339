import { type Command, Option } from "commander";
import { defaultHashCacheDir } from "../../hash/index.js";
import {
  addToLibrary,
  defaultLibraryPath,
  type FindQuery,
  findEntries,
  type LibraryEntry,
  LibraryStore,
  listEntries,
  openLibrary,
  rescanLibrary,
  type ScanSummary,
  showEntry,
} from "../../library/index.js";
import { hashCacheOption } from "../flags.js";
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

  libraryCommand(library, "list", "list the files of the library")
    .option("--no-missing", "leave out files that are no longer on disk")
    .action(async (flags: LibraryFlags & { missing: boolean }) => {
      const entries = await withStore(flags, (store) =>
        listEntries(store, { includeMissing: flags.missing }),
      );
      printEntries(entries, flags);
    });

  libraryCommand(library, "show", "everything the library knows about one file")
    .argument("<file-or-hash>", "a path or a prefix of any of its hashes")
    .action(async (fileOrHash: string, flags: LibraryFlags) => {
      const entry = await withStore(flags, (store) => showEntry(store, fileOrHash));
      if (flags.json) printJson(entry);
      else process.stdout.write(formatEntryDetails(entry));
    });

  libraryCommand(library, "find", "files matching every criterion given")
    .option("--name <text>", "part of the file name or of a model/version name from a sidecar")
    .option("--tag <tag>", "a tag from a sidecar")
    .option("--base <base>", 'base model from a sidecar ("SD 1.5") or detected family (sd1, sdxl)')
    .option("--hash <prefix>", "a prefix of any of the six hashes")
    .action(async (flags: LibraryFlags & FindQuery) => {
      const query: FindQuery = { name: flags.name, tag: flags.tag, base: flags.base, hash: flags.hash };
      const entries = await withStore(flags, (store) => findEntries(store, query));
      printEntries(entries, flags);
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
  process.stdout.write(`${parts.join(", ")}\n`);
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
  for (const fact of entry.sidecars) {
    const value = typeof fact.value === "string" ? fact.value : JSON.stringify(fact.value);
    row(fact.fact, `${value.length > 120 ? `${value.slice(0, 117)}...` : value}  [${fact.source}]`);
  }
  return `${lines.join("\n")}\n`;
}
