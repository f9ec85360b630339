import { GyozaError, isGyozaError, throwIfAborted } from "../../errors.js";
import type { ImageScorer, ScoreOptions, ScorerImage } from "./scorer.js";

/**
 * The HTTP scorer protocol (src/automix/SCORERS.md): POST `url` with JSON
 * `{"images": [{"png": BASE64, "prompt": TEXT, "seed": N}, …]}`, answered with
 * `{"scores": [NUMBER, …]}`, one finite number per image, in order, higher is better.
 */
export interface HttpScorerOptions {
  readonly name?: string;
  readonly url: string;
  readonly headers?: Record<string, string>;
  /** Longest wait for one answer (default 120 s). */
  readonly timeoutSeconds?: number;
  /** Further tries after a network error, a timeout, 429 or 5xx (default 2), with 0.5 s, 1 s, … between. */
  readonly retries?: number;
  /** First pause between tries in ms (default 500; tests use less). */
  readonly backoffMs?: number;
}

/** Longest answer read: 1000 scores need a few kB, so anything near this is not a scorer talking. */
export const MAX_SCORER_RESPONSE_BYTES = 1 << 20;

class Retryable extends Error {}

export function httpScorer(options: HttpScorerOptions): ImageScorer {
  const url = checkedUrl(options.url);
  const retries = options.retries ?? 2;
  const backoff = options.backoffMs ?? 500;
  const timeoutMs = (options.timeoutSeconds ?? 120) * 1000;
  const where = `scorer ${url.origin}${url.pathname}`;
  return {
    name: options.name ?? "http",
    kind: "images",
    async score(images: readonly ScorerImage[], scoreOptions: ScoreOptions = {}): Promise<number[]> {
      if (images.length === 0) return [];
      const body = JSON.stringify({
        images: images.map((image) => ({
          png: image.png.toString("base64"),
          prompt: image.prompt,
          seed: image.seed,
        })),
      });
      let lastProblem = "";
      for (let attempt = 0; attempt <= retries; attempt++) {
        throwIfAborted(scoreOptions.signal);
        if (attempt > 0) await sleep(backoff * 2 ** (attempt - 1), scoreOptions.signal);
        try {
          return await postOnce(
            url,
            body,
            images.length,
            options.headers ?? {},
            timeoutMs,
            where,
            scoreOptions.signal,
          );
        } catch (error) {
          if (!(error instanceof Retryable)) throw error;
          lastProblem = error.message;
        }
      }
      throw new GyozaError("network", `${where} failed ${retries + 1} times; last: ${lastProblem}`, {
        fix: "check that the scoring server is running and answers the protocol in src/automix/SCORERS.md",
      });
    },
  };
}

function checkedUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new GyozaError("usage", `the HTTP scorer's url "${text}" is not a URL`, { cause });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new GyozaError("usage", `the HTTP scorer's url must be http or https, not ${url.protocol}`);
  return url;
}

async function postOnce(
  url: URL,
  body: string,
  count: number,
  headers: Record<string, string>,
  timeoutMs: number,
  where: string,
  userSignal: AbortSignal | undefined,
): Promise<number[]> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = userSignal ? AbortSignal.any([userSignal, timeout]) : timeout;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", accept: "application/json" },
      body,
      signal,
    });
    text = await readCapped(response, where);
  } catch (error) {
    if (userSignal?.aborted) throwIfAborted(userSignal);
    if (isGyozaError(error)) throw error;
    if (timeout.aborted) throw new Retryable(`no answer within ${timeoutMs / 1000} s`);
    throw new Retryable((error as Error).cause ? String((error as Error).cause) : (error as Error).message);
  }
  if (response.status === 429 || response.status >= 500)
    throw new Retryable(`HTTP ${response.status}: ${text.slice(0, 200)}`);
  if (!response.ok)
    throw new GyozaError(
      "network",
      `${where} refused the images: HTTP ${response.status}: ${text.slice(0, 200)}`,
      {
        fix: "see src/automix/SCORERS.md for the request it should accept",
      },
    );
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new GyozaError(
      "format",
      `${where} answered something that is not JSON: ${JSON.stringify(text.slice(0, 80))}`,
      {
        fix: 'it must answer {"scores": [number, …]} (src/automix/SCORERS.md)',
        cause,
      },
    );
  }
  const scores = (data as { scores?: unknown } | null)?.scores;
  if (!Array.isArray(scores))
    throw new GyozaError("format", `${where} answered JSON without a "scores" list`, {
      fix: 'it must answer {"scores": [number, …]} (src/automix/SCORERS.md)',
    });
  if (scores.length !== count)
    throw new GyozaError("format", `${where} gave ${scores.length} scores for ${count} images`, {
      fix: "it must give exactly one score per image, in order",
    });
  const bad = scores.findIndex((s) => typeof s !== "number" || !Number.isFinite(s));
  if (bad >= 0)
    throw new GyozaError(
      "format",
      `${where} gave score ${bad} as ${JSON.stringify(scores[bad])}, not a finite number`,
    );
  return scores as number[];
}

async function readCapped(response: Response, where: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > MAX_SCORER_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw new GyozaError(
      "limit",
      `${where} answered ${declared} bytes; at most ${MAX_SCORER_RESPONSE_BYTES} are read`,
    );
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body) {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > MAX_SCORER_RESPONSE_BYTES)
        throw new GyozaError("limit", `${where} answered more than ${MAX_SCORER_RESPONSE_BYTES} bytes`);
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString("utf8");
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      try {
        throwIfAborted(signal);
      } catch (error) {
        reject(error);
      }
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
