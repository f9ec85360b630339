import { isGyozaError } from "../errors.js";
import { CIVITAI_API_SOURCE, type LibraryStore } from "../library/library-store.js";
import { factsFromCivitaiInfo, sidecarFactsOf } from "../library/read-sidecars.js";
import type { CivitaiClient } from "./civitai-client.js";

/** The facts' source: Civitai's own answer, not a sidecar (nothing is written beside the models). */
export { CIVITAI_API_SOURCE };

export interface FetchSummary {
  /** Files that had no Civitai facts and were looked up. */
  looked: number;
  found: number;
  notFound: number;
  /** Files whose answer could not be used, with the reason (the others go on). */
  failed: { path: string; reason: string }[];
  /** HTTP requests made (the rest came from the cache). */
  requests: number;
}

export interface FetchOptions {
  /** Told after each file: done so far, of how many. */
  onFile?: (done: number, total: number, path: string) => void;
}

interface PendingFile {
  id: number;
  path: string;
  sha256: string;
}

/**
 * Looks up on Civitai, by SHA256, every hashed file of the library that is on disk and has no
 * Civitai facts yet (no version id from a sidecar, no earlier answer), and stores the answer as
 * facts with source `civitai-api` (the same fields as a `.civitai.info`; "not found" as
 * `civitaiNotFound`), which also groups the file into its Civitai model and version. Each file is
 * written in its own transaction, so an interruption keeps the files done. A network failure (the
 * client already retried) stops the run; an answer of the wrong shape is noted and skipped.
 */
export async function fetchCivitaiFacts(
  store: LibraryStore,
  client: CivitaiClient,
  options: FetchOptions = {},
): Promise<FetchSummary> {
  const pending = store.db
    .prepare<[], PendingFile>(
      `SELECT files.id, files.path, hashes.sha256 FROM files JOIN hashes ON hashes.file_id = files.id
       WHERE files.missing = 0 AND NOT EXISTS (
         SELECT 1 FROM sidecar_facts WHERE sidecar_facts.file_id = files.id
           AND (sidecar_facts.fact = 'civitaiVersionId' OR sidecar_facts.source = 'civitai-api'))
       ORDER BY files.path`,
    )
    .all();
  const requestsBefore = client.requests;
  const summary: FetchSummary = { looked: 0, found: 0, notFound: 0, failed: [], requests: 0 };
  for (const file of pending) {
    const url = `${client.baseUrl}/api/v1/model-versions/by-hash/${file.sha256.toUpperCase()}`;
    try {
      const version = await client.findModelVersionByHash(file.sha256);
      const found = version ? factsFromCivitaiInfo(version) : { civitaiNotFound: true };
      store.replaceApiFacts(file.id, sidecarFactsOf(CIVITAI_API_SOURCE, url, found));
      if (version) summary.found++;
      else summary.notFound++;
    } catch (error) {
      if (!isGyozaError(error, "format") && !isGyozaError(error, "limit")) throw error;
      summary.failed.push({ path: file.path, reason: error.message });
    }
    summary.looked++;
    summary.requests = client.requests - requestsBefore;
    options.onFile?.(summary.looked, pending.length, file.path);
  }
  return summary;
}
