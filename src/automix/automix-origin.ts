/**
 * Where a merged file came from when `gyoza automix best --merge` made it (issue #24): the study,
 * the trial whose candidate it is, that trial's score, the optimizer and its seed. Written into the
 * file's `__metadata__` as `gyoza_automix` (JSON, beside `gyoza_recipe`) so the file itself says so,
 * and read back by every library scan into `file_provenance.automix`, so the library's model page
 * shows it and a rescan keeps it. Read back as untrusted text: any other shape is ignored.
 */
export interface AutomixOrigin {
  readonly study: string;
  readonly trial: number;
  readonly score: number;
  readonly optimizer: string;
  readonly seed: number;
}

/** The safetensors `__metadata__` key (gyoza's own keys are `gyoza_*`, like gyoza_recipe). */
export const AUTOMIX_METADATA_KEY = "gyoza_automix";

/** Longest study or optimizer name kept when read back (a study name is a short label). */
const MAX_NAME = 1000;

/** The origin as written into the metadata and the library (only its five fields, in this order). */
export function automixOriginText(origin: AutomixOrigin): string {
  const { study, trial, score, optimizer, seed } = origin;
  return JSON.stringify({ study, trial, score, optimizer, seed });
}

/** The origin recorded in `text`, or null when it is not JSON of that shape. */
export function readAutomixOrigin(text: string | null | undefined): AutomixOrigin | null {
  if (typeof text !== "string" || text.length > 10 * MAX_NAME) return null;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) return null;
  const record = data as Record<string, unknown>;
  const { study, trial, score, optimizer, seed } = record;
  const name = (value: unknown): value is string =>
    typeof value === "string" && value.trim() !== "" && value.length <= MAX_NAME;
  if (!name(study) || !name(optimizer)) return null;
  if (!Number.isSafeInteger(trial) || (trial as number) < 0 || !Number.isSafeInteger(seed)) return null;
  if (typeof score !== "number" || !Number.isFinite(score)) return null;
  return { study, trial: trial as number, score, optimizer, seed: seed as number };
}

/** One line for people: `from automix study "s", trial 12, score 0.91 (quadratic, seed 7)`. */
export function describeAutomixOrigin(origin: AutomixOrigin): string {
  return `from automix study "${origin.study}", trial ${origin.trial}, score ${origin.score} (${origin.optimizer}, seed ${origin.seed})`;
}
