/**
 * One error type for the whole library, with stable codes callers can branch on.
 * The library never prints and never exits: the CLI turns these into messages and exit codes.
 */
export type GyozaErrorCode =
  | "format" // the bytes do not follow the file format
  | "limit" // a hostile-input limit was hit (sizes, depths, counts)
  | "unsafe-pickle" // a pickle names a global or opcode outside the allowlist
  | "recipe" // a recipe is invalid; `path` says where inside it
  | "architecture-mismatch" // inputs that cannot be combined
  | "unknown-id" // a preset, method or option name that does not exist
  | "io" // the file system refused (missing file, full disk, permissions)
  | "usage" // the caller asked for something contradictory
  | "hash-mismatch" // a file is not the one a recipe expects
  | "network" // a remote service (Civitai) could not be reached, timed out or kept failing
  | "not-found" // a remote service answered that it has no such item (HTTP 404)
  | "interrupted"; // the user stopped the operation

export interface GyozaErrorOptions {
  /** File the error is about. */
  file?: string;
  /** Tensor key, recipe path or other location inside the file. */
  path?: string;
  /** A line starting with "fix:" that tells the user what to do. */
  fix?: string;
  cause?: unknown;
}

/**
 * The one error the library throws for anything a user can cause or fix: branch on `code` (stable),
 * show `describe()` (message with file, location and a `fix:` line).
 */
export class GyozaError extends Error {
  readonly code: GyozaErrorCode;
  readonly file: string | undefined;
  readonly path: string | undefined;
  readonly fix: string | undefined;

  constructor(code: GyozaErrorCode, message: string, options: GyozaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GyozaError";
    this.code = code;
    this.file = options.file;
    this.path = options.path;
    this.fix = options.fix;
  }

  /** The message with file, location and fix, as the CLI shows it. */
  describe(): string {
    const where = [this.file, this.path].filter(Boolean).join(": ");
    const head = where ? `${where}: ${this.message}` : this.message;
    return this.fix ? `${head}\nfix: ${this.fix}` : head;
  }
}

/** Whether `error` is a GyozaError (with this code, when one is given): how callers branch on failures. */
export function isGyozaError(error: unknown, code?: GyozaErrorCode): error is GyozaError {
  return error instanceof GyozaError && (code === undefined || error.code === code);
}

/**
 * Throws an "interrupted" GyozaError once `signal` is aborted (its reason as the cause): long
 * operations call it between units of work, so a caller's AbortController stops them there.
 */
export function throwIfAborted(signal: AbortSignal | undefined, file?: string): void {
  if (!signal?.aborted) return;
  throw new GyozaError("interrupted", "stopped by the caller's AbortSignal", { file, cause: signal.reason });
}

/** Levenshtein-based "did you mean" for unknown ids. */
export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const needle = input.toLowerCase();
  for (const candidate of candidates) {
    const distance = editDistance(needle, candidate.toLowerCase());
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(needle.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length]!;
}

export function unknownIdError(kind: string, input: string, candidates: Iterable<string>): GyozaError {
  const list = [...candidates];
  const guess = didYouMean(input, list);
  const fix = guess ? `did you mean "${guess}"?` : `known ${kind}s: ${list.join(", ")}`;
  return new GyozaError("unknown-id", `unknown ${kind} "${input}"`, { fix });
}
