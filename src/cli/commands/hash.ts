import type { Command } from "commander";
import {
  defaultHashCacheDir,
  type FileHashResult,
  HASH_ALGORITHMS,
  hashFiles,
  parseHashAlgorithms,
} from "../../hash/index.js";
import { civitaiFactsIfCheckpoint } from "../../lineage/index.js";
import { hashCacheOption } from "../flags.js";
import { formatBytes, printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

export function registerHash(program: Command): void {
  program
    .command("hash")
    .description(
      "hash files as Civitai and the web UIs do (SHA256, AutoV1, AutoV2, AutoV3, BLAKE3, CRC32), all in one pass",
    )
    .argument("<files...>", "files to hash")
    .option("--json", "print a JSON array of { file, size, ...hashes, civitai } (civitai: checkpoints only)")
    .option("--algo <list>", `comma-separated subset of ${HASH_ALGORITHMS.join(",")} (default: all)`)
    .addOption(hashCacheOption("hash again even if the cache knows the file (the fresh result is stored)"))
    .action(async (files: string[], options: { json?: boolean; algo?: string; hashCache: boolean }) => {
      const results = await hashFiles(files, {
        algorithms: options.algo === undefined ? HASH_ALGORITHMS : parseHashAlgorithms(options.algo),
        cacheDir: defaultHashCacheDir(),
        refresh: !options.hashCache,
        onProgress: progressBar({ quiet: options.json }),
      });
      if (options.json) {
        // One file open at a time: a folder of models can be long.
        const withFacts = [];
        for (const { file, size, hashes } of results)
          withFacts.push({ file, size, ...hashes, ...(await civitaiFactsIfCheckpoint(file)) });
        printJson(withFacts);
      } else process.stdout.write(formatHashResults(results));
    });
}

/** Per file: the Civitai forms in a column, the A1111 / kohya / byte-order variants beside them. */
export function formatHashResults(results: readonly FileHashResult[]): string {
  const lines: string[] = [];
  for (const { file, size, hashes, fromCache } of results) {
    lines.push(`${file}  (${formatBytes(size)}${fromCache ? ", cached" : ""})`);
    const rows: [string, string | null | undefined, string?][] = [
      ["SHA256", hashes.sha256],
      ["AutoV1", hashes.autoV1, legacy(hashes.autoV1, hashes.a1111?.modelHash)],
      ["AutoV2", hashes.autoV2, hashes.a1111?.shorthash && `A1111 Model hash: ${hashes.a1111.shorthash}`],
      ["AutoV3", hashes.autoV3, hashes.autoV3Full && `sshs_model_hash: ${hashes.autoV3Full.toLowerCase()}`],
      ["BLAKE3", hashes.blake3],
      ["CRC32", hashes.crc32Civitai, hashes.crc32 && `as Civitai prints it; IEEE value ${hashes.crc32}`],
    ];
    for (const [label, value, note] of rows) {
      if (value === undefined) continue;
      const shown = value ?? "-";
      lines.push(`  ${label.padEnd(8)}${note ? `${shown.padEnd(14)}${note}` : shown}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function legacy(autoV1: string | null | undefined, modelHash: string | undefined): string | undefined {
  if (modelHash === undefined) return undefined;
  const prefix = autoV1 === null ? "no Civitai AutoV1 under 2 MiB; " : "";
  return `${prefix}A1111 legacy model_hash: ${modelHash}`;
}
