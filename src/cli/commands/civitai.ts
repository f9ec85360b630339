import { stat } from "node:fs/promises";
import cliProgress from "cli-progress";
import { type Command, Option } from "commander";
import {
  CIVITAI_BASE_URL,
  CivitaiClient,
  type CivitaiModelVersion,
  type FetchSummary,
  fetchCivitaiFacts,
} from "../../civitai/index.js";
import { GyozaError } from "../../errors.js";
import { defaultHashCacheDir, hashFiles } from "../../hash/index.js";
import type { LibraryStore } from "../../library/index.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

export interface CivitaiFlags {
  baseUrl: string;
  cache: boolean;
  json?: boolean;
}

export function registerCivitai(program: Command): void {
  const civitai = program
    .command("civitai")
    .description("Civitai's public API: what Civitai knows about a model file (needs the network)");

  civitai
    .command("lookup")
    .description(
      "the Civitai model version a file (hashed first) or a hash belongs to: model, version, base model, trained words, files, images",
    )
    .argument(
      "<file-or-hash>",
      "a model file, or any of its hashes (SHA256, AutoV1, AutoV2, AutoV3, BLAKE3, CRC32)",
    )
    .addOption(baseUrlOption())
    .option("--no-cache", "ask Civitai even if the answer is cached (the fresh answer replaces it)")
    .option("--json", "print Civitai's answer (the model-version JSON)")
    .action(async (fileOrHash: string, flags: CivitaiFlags) => {
      const hash = await hashOf(fileOrHash, flags);
      const version = await civitaiClient(flags).modelVersionByHash(hash);
      if (flags.json) printJson(version);
      else process.stdout.write(formatVersion(version, hash, flags.baseUrl));
    });
}

/** `--base-url`, the same for `gyoza civitai lookup` and `gyoza library fetch`. */
export function baseUrlOption(): Option {
  return new Option(
    "--base-url <url>",
    "the Civitai to ask (an API key is read from $CIVITAI_API_KEY)",
  ).default(CIVITAI_BASE_URL);
}

/** `gyoza library fetch`: Civitai's answers for every file without Civitai facts, as facts. */
export async function fetchLibraryFromCivitai(
  store: LibraryStore,
  flags: { baseUrl: string; json?: boolean },
): Promise<FetchSummary> {
  const bar =
    flags.json || !process.stderr.isTTY
      ? undefined
      : new cliProgress.SingleBar(
          { stream: process.stderr, format: "civitai [{bar}] {value}/{total} files | ETA {eta_formatted}" },
          cliProgress.Presets.shades_classic,
        );
  try {
    return await fetchCivitaiFacts(store, civitaiClient({ ...flags, cache: true }), {
      onFile: (done, total) => {
        if (done === 1) bar?.start(total, 0);
        bar?.update(done);
      },
    });
  } finally {
    bar?.stop();
  }
}

export function printFetchSummary(summary: FetchSummary, flags: { json?: boolean }): void {
  if (flags.json) {
    printJson(summary);
    return;
  }
  const lines = [
    `${summary.looked} looked up, ${summary.found} found, ${summary.notFound} not on Civitai, ${summary.failed.length} failed (${summary.requests} requests)`,
    ...summary.failed.map((failure) => `  ${failure.path}: ${failure.reason}`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

function civitaiClient(flags: { baseUrl: string; cache: boolean }): CivitaiClient {
  return new CivitaiClient({
    baseUrl: flags.baseUrl,
    refresh: !flags.cache,
    apiKey: process.env.CIVITAI_API_KEY || undefined,
    onRetry: ({ reason, delayMs }) =>
      process.stderr.write(`civitai: ${reason}; trying again in ${(delayMs / 1000).toFixed(1)} s\n`),
  });
}

/** A file's SHA256 (hashed with the hash cache), or the argument itself when it is no file. */
async function hashOf(fileOrHash: string, flags: { json?: boolean }): Promise<string> {
  const isFile = (await stat(fileOrHash).catch(() => undefined))?.isFile() ?? false;
  if (!isFile) {
    if (/^[0-9a-fA-F]{8,64}$/.test(fileOrHash)) return fileOrHash;
    throw new GyozaError("usage", `"${fileOrHash}" is neither a file nor a hash (8 to 64 hex digits)`);
  }
  const [result] = await hashFiles([fileOrHash], {
    algorithms: ["sha256"],
    cacheDir: defaultHashCacheDir(),
    onProgress: progressBar({ quiet: flags.json }),
  });
  return result!.hashes.sha256!;
}

function formatVersion(version: CivitaiModelVersion, hash: string, baseUrl: string): string {
  const lines = [`${version.model.name} ${version.name}`];
  const row = (label: string, value: string | null | undefined): void => {
    if (value) lines.push(`  ${label.padEnd(14)}${value}`);
  };
  row("type", version.model.type);
  row("base model", version.baseModel);
  row("page", `${baseUrl}/models/${version.modelId}?modelVersionId=${version.id}`);
  row("trained words", version.trainedWords?.join(", "));
  const wanted = hash.toUpperCase();
  for (const file of version.files) {
    const hashes = Object.values(file.hashes ?? {}).map((value) => value?.toUpperCase());
    const metadata = [file.metadata?.format, file.metadata?.size, file.metadata?.fp].filter(Boolean);
    const notes = [
      file.type,
      ...metadata,
      file.sizeKB === undefined || file.sizeKB === null ? undefined : `${formatKB(file.sizeKB)}`,
      file.primary ? "primary" : undefined,
      hashes.includes(wanted) ? "this file" : undefined,
    ].filter(Boolean);
    row("file", `${file.name}  (${notes.join(", ")})`);
  }
  row("images", version.images && `${version.images.length}`);
  return `${lines.join("\n")}\n`;
}

function formatKB(sizeKB: number): string {
  return sizeKB >= 1024 * 1024
    ? `${(sizeKB / 1024 / 1024).toFixed(2)} GB`
    : sizeKB >= 1024
      ? `${(sizeKB / 1024).toFixed(1)} MB`
      : `${sizeKB.toFixed(1)} KB`;
}
