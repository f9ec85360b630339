import { existsSync } from "node:fs";
import type { Command } from "commander";
import { GyozaError } from "../../errors.js";
import { defaultLibraryPath, LibraryStore, openLibrary } from "../../library/index.js";
import { type LibraryModelPage, writeLibraryModelPage } from "../../page/index.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface PageFlags {
  output: string;
  library?: string;
  replace?: boolean;
  json?: boolean;
}

export function registerPage(program: Command): void {
  program
    .command("page")
    .description(
      "write a library model's page: one self-contained HTML file with its versions, files, hashes, sample images (originals kept with their metadata, thumbnails), recipe and usage",
    )
    .argument(
      "<model>",
      "MODEL, MODEL@VERSION, a Civitai model id, or a path or hash prefix of one of its files",
    )
    .requiredOption("-o, --output <dir>", "the page folder to write (index.html, images/, thumbnails/)")
    .option(
      "--library <file>",
      "the library database (default: $GYOZA_LIBRARY or ~/.local/share/gyoza/library.db)",
    )
    .option("--replace", "replace the folder if it exists (the old one stays until the new one is complete)")
    .option("--json", "print what was written as JSON")
    .action(async (model: string, flags: PageFlags) => {
      const path = flags.library ?? defaultLibraryPath();
      if (!existsSync(path)) {
        throw new GyozaError("usage", `no library at ${path}`, {
          file: path,
          fix: "make one with gyoza library add FOLDER (or name it with --library)",
        });
      }
      const db = openLibrary(path);
      let written: LibraryModelPage;
      try {
        written = await writeLibraryModelPage(new LibraryStore(db), model, flags.output, {
          replace: flags.replace ?? false,
          onProgress: progressBar({ quiet: flags.json }),
        });
      } finally {
        db.close();
      }
      if (flags.json) {
        printJson(written);
        return;
      }
      const versions = written.versions.map(
        (version) => `${version.name} (${version.files} files, ${version.images} images)`,
      );
      const lines = [`wrote ${written.page}`, `  ${written.model}: ${versions.join(", ") || "no versions"}`];
      for (const image of written.images.filter((entry) => entry.problem !== null)) {
        lines.push(`  no preview for ${image.source}: ${image.problem}`);
      }
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}
