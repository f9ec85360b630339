import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { GyozaError, isGyozaError } from "../../errors.js";
import { hashFiles } from "../../hash/index.js";
import { copyMetadata, type ImageBytes, stripMetadata } from "../../image/carry-metadata.js";
import { detectGeneration, detectHiddenGeneration } from "../../image/detect-generation.js";
import type { GenerationInfo, HiresSettings } from "../../image/generators/generation-info.js";
import {
  algorithmsFor,
  isModelFileName,
  linkResources,
  type ResourceLink,
  recordedResources,
} from "../../image/image-link.js";
import { type ImageMetadata, textsByKey } from "../../image/metadata-types.js";
import { readImageMetadata } from "../../image/read-image-metadata.js";
import { readStealthPngInfo } from "../../image/stealth-pnginfo.js";
import { writeFileAtomically } from "../../io/atomic-file.js";
import { FileByteSource, ioError } from "../../io/byte-source.js";
import { hashCacheOption, searchOption } from "../flags.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

/** copy-meta and strip hold the whole image in memory; real images are a few MB. */
const MAX_IMAGE_BYTES = 512 * 1024 * 1024;
/** A model folder walk stops this deep (symlink loops, mounted trees). */
const MAX_SEARCH_DEPTH = 8;

export function registerImage(program: Command): void {
  const image = program.command("image").description("generation metadata in PNG, JPEG and WebP images");
  image
    .command("info")
    .description(
      "show the generation metadata of images (A1111, ComfyUI, Civitai, Tensor.Art, NovelAI, InvokeAI, Fooocus, SwarmUI, ...)",
    )
    .argument("<images...>", "PNG, JPEG or WebP files")
    .option("--json", "print a JSON array of { file, container, generation, texts, warnings }")
    .option(
      "--no-stealth",
      "never decode PNG pixels to look for stealth pnginfo (done only when no text chunk has any)",
    )
    .action(async (images: string[], options: { json?: boolean; stealth: boolean }) => {
      const reports: unknown[] = [];
      let failed = false;
      for (const file of images) {
        try {
          const report = await imageReport(file, options.stealth);
          if (options.json) reports.push(report);
          else process.stdout.write(formatReport(report));
        } catch (error) {
          if (!isGyozaError(error)) throw error;
          failed = true;
          if (options.json) reports.push({ file, error: error.describe() });
          else process.stderr.write(`gyoza: ${error.describe()}\n`);
        }
      }
      if (options.json) printJson(reports);
      if (failed) process.exitCode = 1;
    });
  image
    .command("copy-meta")
    .description("carry SRC's metadata onto DST (a re-encoded or resized copy); pixels are not touched")
    .argument("<src>", "image whose metadata to copy")
    .argument("<dst>", "image that receives it (rewritten atomically unless --output)")
    .option(
      "-o, --output <file>",
      "write the result here instead of replacing DST; it stays DST's container, so name it .png, .jpg or .webp to match",
    )
    .option("--allow-loss", "drop metadata DST's format cannot hold instead of refusing")
    .action(async (src: string, dst: string, options: { output?: string; allowLoss?: boolean }) => {
      const result = await copyMetadata(await readImage(src), await readImage(dst), {
        allowLoss: options.allowLoss,
        outputName: options.output,
      });
      await writeFileAtomically(options.output ?? dst, result.bytes);
      process.stdout.write(`${options.output ?? dst}: carried ${result.carried.join(", ")}\n`);
      if (result.dropped.length > 0)
        process.stderr.write(`gyoza: dropped ${result.dropped.join(", ")} (--allow-loss)\n`);
      if (result.replaced.length > 0)
        process.stderr.write(`gyoza: replaced ${dst}'s own ${result.replaced.join(", ")}\n`);
    });
  image
    .command("strip")
    .description(
      "remove all text metadata (PNG text/eXIf, JPEG EXIF/XMP/COM, WebP EXIF/XMP) in place, atomically",
    )
    .argument("<images...>", "images to strip")
    .action(async (images: string[]) => {
      for (const file of images) {
        const result = await stripMetadata(await readImage(file));
        if (result.replaced.length === 0) {
          process.stdout.write(`${file}: no metadata\n`);
          await warnAboutStealth(file);
          continue;
        }
        await writeFileAtomically(file, result.bytes);
        process.stdout.write(`${file}: removed ${result.replaced.join(", ")}\n`);
        await warnAboutStealth(file);
      }
    });
  image
    .command("link")
    .description(
      "say which local model, VAE, LoRA and embedding files an image used, matched by hash as Civitai does",
    )
    .argument("<images...>", "images to look at")
    .addOption(searchOption("a folder to search (recursively) for model files").makeOptionMandatory())
    .option("--json", "print a JSON array of { file, resources: [{ kind, name, hash, matches }] }")
    .addOption(hashCacheOption("hash local files again even if the cache knows them"))
    .action(async (images: string[], options: { search: string[]; json?: boolean; hashCache: boolean }) => {
      const perImage: { file: string; info: GenerationInfo | undefined }[] = [];
      for (const file of images) perImage.push({ file, info: (await imageReport(file, true)).generation });
      const resources = perImage.flatMap(({ info }) => (info ? recordedResources(info) : []));
      const files = await findModelFiles(options.search);
      const hashed = await hashFiles(files, {
        algorithms: algorithmsFor(resources),
        refresh: !options.hashCache,
        onProgress: progressBar({ quiet: options.json }),
      });
      const local = hashed.map(({ file, hashes }) => ({ file, hashes }));
      const results = perImage.map(({ file, info }) => ({
        file,
        resources: info ? linkResources(recordedResources(info), local) : [],
      }));
      if (options.json) printJson(results);
      else for (const result of results) process.stdout.write(formatLinks(result.file, result.resources));
    });
}

interface ImageReport {
  file: string;
  container: string;
  width?: number;
  height?: number;
  generation: GenerationInfo | undefined;
  texts: { key: string; origin: string; text: string }[];
  warnings: readonly string[];
}

async function imageReport(file: string, stealth: boolean): Promise<ImageReport> {
  const source = await FileByteSource.open(file);
  try {
    const metadata: ImageMetadata = await readImageMetadata(source);
    const texts = metadata.texts.map(({ key, origin, text }) => ({ key, origin, text }));
    const warnings = [...metadata.warnings];
    let generation = detectGeneration(textsByKey(texts));
    // Pixels are decoded only for a PNG whose chunks hold no generation metadata: the one case where
    // stealth pnginfo is the only record (A1111's stealth extension).
    if (!generation && stealth && metadata.container === "png") {
      const hidden = await readStealthPngInfo(source).catch((error: unknown) => {
        if (!isGyozaError(error)) throw error;
        warnings.push(`stealth pnginfo: ${error.message}`);
        return undefined;
      });
      if (hidden) {
        texts.push({ key: "stealth_pnginfo", origin: `PNG pixels (${hidden.signature})`, text: hidden.text });
        generation = detectHiddenGeneration(hidden.text);
      }
    }
    return {
      file,
      container: metadata.container,
      width: metadata.width,
      height: metadata.height,
      generation,
      texts,
      warnings,
    };
  } finally {
    await source.close();
  }
}

function formatReport(report: ImageReport): string {
  const lines = [
    `${report.file}  (${report.container.toUpperCase()} ${report.width ?? "?"}x${report.height ?? "?"}, ${report.generation?.generator ?? "no generation metadata"})`,
  ];
  const info = report.generation;
  if (info) {
    if (info.prompt !== undefined) lines.push(`  Prompt: ${indent(info.prompt)}`);
    if (info.negativePrompt !== undefined) lines.push(`  Negative prompt: ${indent(info.negativePrompt)}`);
    const settings: [string, unknown][] = [
      ["Steps", info.steps],
      ["Sampler", info.sampler],
      ["Scheduler", info.scheduler],
      ["CFG scale", info.cfgScale],
      ["Seed", info.seed],
      [
        "Size",
        info.width !== undefined && info.height !== undefined ? `${info.width}x${info.height}` : undefined,
      ],
      ["Clip skip", info.clipSkip],
    ];
    const shown = settings
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}: ${value}`);
    if (shown.length > 0) lines.push(`  ${shown.join(", ")}`);
    const ref = (r: { name?: string; hash?: string; weight?: number }) =>
      `${r.name ?? "?"}${r.weight !== undefined ? ` @${r.weight}` : ""}${r.hash ? ` [${r.hash}]` : ""}`;
    if (info.model) lines.push(`  Model: ${ref(info.model)}`);
    if (info.vae) lines.push(`  VAE: ${ref(info.vae)}`);
    if (info.loras.length > 0) lines.push(`  LoRAs: ${info.loras.map(ref).join(", ")}`);
    if (info.embeddings.length > 0) lines.push(`  Embeddings: ${info.embeddings.map(ref).join(", ")}`);
    if (info.hires) lines.push(`  Hires: ${formatHires(info.hires)}`);
    for (const note of info.notes ?? []) lines.push(`  note: ${note}`);
  }
  for (const text of report.texts)
    lines.push(`  [${text.key}] ${text.origin}, ${text.text.length} characters`);
  for (const warning of report.warnings) lines.push(`  warning: ${warning}`);
  return `${lines.join("\n")}\n`;
}

function formatHires(h: HiresSettings): string {
  const upscale = `${h.upscale === undefined ? "upscale" : `x${h.upscale}`}${h.width === undefined ? "" : ` to ${h.width}x${h.height}`}`;
  const parts = [`${upscale}${h.upscaler ? ` with ${h.upscaler}` : ""}`, h.steps && `${h.steps} steps`];
  return [...parts, h.denoise !== undefined && `denoise ${h.denoise}`].filter(Boolean).join(", ");
}

function indent(text: string): string {
  return text.replace(/\r?\n/g, "\n    ");
}

function formatLinks(file: string, resources: readonly ResourceLink[]): string {
  const lines = [file];
  if (resources.length === 0) lines.push("  no models, VAEs, LoRAs or embeddings recorded");
  for (const r of resources) {
    const what = `${r.kind} ${r.name ?? "?"}${r.hash ? ` [${r.hash}]` : ""}`;
    if (r.matches.length === 0) lines.push(`  ${what}: not found`);
    for (const match of r.matches) lines.push(`  ${what}: ${match.file} (by ${match.via})`);
  }
  return `${lines.join("\n")}\n`;
}

async function readImage(path: string): Promise<ImageBytes> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (cause) {
    throw ioError(path, cause);
  }
  if (size > MAX_IMAGE_BYTES)
    throw new GyozaError("limit", `image of ${size} bytes is over the ${MAX_IMAGE_BYTES}-byte limit`, {
      file: path,
    });
  try {
    return { bytes: await readFile(path), name: path };
  } catch (cause) {
    throw ioError(path, cause);
  }
}

/** Stealth pnginfo lives in the pixels, which strip never changes: say so rather than let the user think it is gone. */
async function warnAboutStealth(file: string): Promise<void> {
  const source = await FileByteSource.open(file);
  try {
    if ((await readImageMetadata(source)).container !== "png") return;
    const hidden = await readStealthPngInfo(source).catch(() => undefined);
    if (hidden) {
      process.stderr.write(
        `gyoza: ${file} still holds ${hidden.signature} data in its pixels; strip does not change pixels\n`,
      );
    }
  } finally {
    await source.close();
  }
}

async function findModelFiles(dirs: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (cause) {
      throw ioError(dir, cause);
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      // Model folders are often symlinks into a shared store; the depth limit stops link loops.
      const target = entry.isSymbolicLink() ? await stat(path).catch(() => undefined) : entry;
      if (target?.isDirectory() && depth < MAX_SEARCH_DEPTH) await walk(path, depth + 1);
      else if (target?.isFile() && isModelFileName(entry.name)) found.push(path);
    }
  };
  for (const dir of dirs) await walk(dir, 0);
  return found;
}
