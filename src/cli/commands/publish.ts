import { type Command, Option } from "commander";
import { defaultLibraryPath, LibraryStore, openLibrary } from "../../library/index.js";
import { type PublishVariant, publishSourceFromLibrary, publishVersion } from "../../publish/index.js";
import { formatBytes, printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface PublishFlags {
  output: string;
  fp16Pruned?: boolean;
  fp32?: boolean;
  ckpt?: boolean;
  vae: boolean;
  force?: boolean;
  library?: string;
  json?: boolean;
}

export function registerPublish(program: Command): void {
  program
    .command("publish")
    .description(
      "lay out a model version for upload: its files (plus converted variants), the VAE, a Hugging Face model card, recipes, sample images and civitai.json",
    )
    .argument("<model@version>", "a model of the library and one of its versions (name or Civitai id)")
    .requiredOption("-o, --output <dir>", "the folder to create (refused if it exists and is not empty)")
    .option("--fp16-pruned", "add an fp16 pruned .safetensors converted from the version's checkpoint")
    .option(
      "--fp32",
      "add an fp32 .safetensors converted from the version's checkpoint (full, or pruned when that file is)",
    )
    .option("--ckpt", "add a .ckpt (PickleTensor) twin of every .safetensors checkpoint published")
    .option("--no-vae", "leave the version's VAE out (by default it is published as its own file)")
    .option("--force", "replace an existing non-empty output folder as a whole")
    .addOption(
      new Option(
        "--library <file>",
        "the library database (default: $GYOZA_LIBRARY or ~/.local/share/gyoza/library.db)",
      ),
    )
    .option("--json", "print the manifest of what was laid out as JSON")
    .action(async (ref: string, flags: PublishFlags) => {
      const db = openLibrary(flags.library ?? defaultLibraryPath());
      let source: ReturnType<typeof publishSourceFromLibrary>;
      try {
        source = publishSourceFromLibrary(new LibraryStore(db), ref);
      } finally {
        db.close();
      }
      const variants: PublishVariant[] = [
        ...(flags.fp16Pruned ? (["fp16-pruned"] as const) : []),
        ...(flags.fp32 ? (["fp32-full"] as const) : []),
      ];
      const manifest = await publishVersion(source, {
        dir: flags.output,
        variants,
        ckpt: flags.ckpt ?? false,
        vae: flags.vae,
        force: flags.force ?? false,
        onProgress: progressBar({ quiet: flags.json ?? false }),
      });
      if (flags.json) {
        printJson(manifest);
        return;
      }
      process.stdout.write(`published ${manifest.model} ${manifest.version} → ${manifest.dir}\n`);
      for (const file of manifest.files) {
        process.stdout.write(
          `  ${file.name}  ${file.type ?? "?"} · ${[file.metadata.format, file.metadata.size, file.metadata.fp].filter(Boolean).join(" · ")}  ${formatBytes(file.sizeBytes)}  AutoV2 ${file.hashes.AutoV2}\n`,
        );
      }
      const extras = [
        manifest.recipes.length ? `${manifest.recipes.length} recipe(s)` : "",
        manifest.images.length ? `${manifest.images.length} image(s)` : "",
        manifest.readme,
        manifest.civitai,
      ].filter(Boolean);
      process.stdout.write(`  ${extras.join(", ")}\n`);
      for (const note of manifest.notes ?? []) process.stdout.write(`note: ${note}\n`);
    });
}
